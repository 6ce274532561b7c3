package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// The browser the UI tests drive: headless Chromium, found as
// $FEEDPIPE_CHROMIUM or on PATH (`make browser` installs Debian's).
const envChromium = "FEEDPIPE_CHROMIUM"

// envUpdateScreenshots, set to 1, makes the UI tests also write the
// screenshots the README shows, under docs/img/.
const envUpdateScreenshots = "FEEDPIPE_UPDATE_SCREENSHOTS"

// Every page is drawn in a window of this size.
const browserWidth, browserHeight = 1400, 900

// findChromium returns the Chromium binary, or fails the test: a machine
// that runs the integration tests has one (make browser).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s: %v; run make browser, or point %s at a Chromium binary", envChromium, p, err, envChromium)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium on PATH and %s is not set: run make browser (installs Debian's chromium and prometheus)", envChromium)
	return ""
}

// newBrowser starts headless Chromium (no sandbox: the tests run as root
// in CI) with a fixed window, and returns a tab's context; the browser is
// closed when the test ends.
func newBrowser(t *testing.T, ctx context.Context, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(browserWidth, browserHeight),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The window's size less the browser's own bars: the page gets exactly
	// this size.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(browserWidth, browserHeight)); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return bctx
}

// waitText polls the page's text (document.body.innerText) until it holds
// every string of want (as is, or with the page's spaces removed: the UI
// shows "WorkflowExecutionFailed" as "Workflow Execution Failed") and none
// of absent, for up to limit; it returns the text, or fails the test with
// what the page last said.
func waitText(t *testing.T, bctx context.Context, limit time.Duration, want, absent []string) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	var text string
	for {
		var err error
		text, err = chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		missing, present := "", ""
		despaced := strings.ReplaceAll(text, " ", "")
		for _, w := range want {
			if !strings.Contains(text, w) && !strings.Contains(despaced, w) {
				missing = w
				break
			}
		}
		for _, a := range absent {
			if strings.Contains(text, a) {
				present = a
				break
			}
		}
		if err == nil && missing == "" && present == "" {
			return text
		}
		if time.Now().After(deadline) || bctx.Err() != nil {
			url, _ := chromedp.Run(bctx, chromedp.Location())
			t.Fatalf("after %s the page %s (err %v) lacks %q or shows %q; its text:\n%s", limit, url, err, missing, present, clip(text, 4000))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// screenshot saves a full-page PNG of the tab as .run/ui/NAME under the
// repository root, a test artifact, and, if docs and with
// FEEDPIPE_UPDATE_SCREENSHOTS=1, as docs/img/NAME too, the README's picture.
func screenshot(t *testing.T, bctx context.Context, name string, docs bool) string {
	t.Helper()
	// A page taller than the window is drawn whole: the viewport grows to
	// the document's height for the picture. (The Web UI scrolls inside
	// its own panes: its document is the window's height.)
	height, err := chromedp.Run(bctx, chromedp.Evaluate[int64](`Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)`))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	png, err := chromedp.Run(bctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		if height > browserHeight {
			if _, err := chromedp.EmulateViewport(browserWidth, height)(ctx, tg); err != nil {
				return nil, err
			}
			defer chromedp.EmulateViewport(browserWidth, browserHeight)(ctx, tg)
			time.Sleep(500 * time.Millisecond) // the relayout
		}
		return chromedp.FullScreenshot(100)(ctx, tg) // quality 100: PNG
	})
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{filepath.Join(root, ".run", "ui")}
	if docs && os.Getenv(envUpdateScreenshots) == "1" {
		dirs = append(dirs, filepath.Join(root, "docs", "img"))
	}
	var out string
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		if out == "" {
			out = p
		}
		t.Logf("screenshot %s (%d bytes)", p, len(png))
	}
	return out
}
