package install

import (
	"os"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}
