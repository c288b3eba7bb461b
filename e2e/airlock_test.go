// Package e2e drives the real clients through a running Airlock binary
// against upstreams the tests start on 127.0.0.1.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the airlock binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airlock-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "airlock")
	// -tags e2e: the clock can be shifted (cmd/airlock/clock_e2e.go).
	build := exec.Command("go", "build", "-tags", "e2e", "-o", binary, "../cmd/airlock")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building airlock:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one running Airlock process.
type instance struct {
	URL   string // http://127.0.0.1:PORT
	Data  string
	Token string
	cmd   *exec.Cmd
	logs  *logBuffer
}

type logBuffer struct {
	lines chan string
	all   strings.Builder
}

// startAirlock runs `airlock serve` with the given YAML config and waits
// until it listens.
func startAirlock(t *testing.T, configYAML string) *instance {
	t.Helper()
	return startAirlockOn(t, configYAML, t.TempDir())
}

// startAirlockOn is startAirlock on a given data directory (a restart uses
// the one before it), with env added to the process's environment.
func startAirlockOn(t *testing.T, configYAML, data string, env ...string) *instance {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "airlock.yaml")
	if err := os.WriteFile(cfgFile, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--config", cfgFile, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inst := &instance{Data: data, cmd: cmd, logs: &logBuffer{lines: make(chan string, 1024)}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "airlock listening" {
				addr <- rec.Addr
			}
			select {
			case inst.logs.lines <- line:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			for len(inst.logs.lines) > 0 {
				t.Log("airlock: " + <-inst.logs.lines)
			}
		}
	})
	select {
	case a := <-addr:
		inst.URL = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("airlock did not start listening")
	}
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	inst.Token = strings.TrimSpace(string(tok))
	return inst
}

// cli runs an airlock client command against the instance.
func (inst *instance) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "AIRLOCK_URL="+inst.URL, "AIRLOCK_TOKEN="+inst.Token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// get fetches a path from the instance.
func (inst *instance) get(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, inst.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
