// Package englishhelp is about the help texts the plugin takes from kubectl.
//
// FitExamples keeps, of kubectl's examples, those that work on templates
// (the root command calls it once the command tree is built).
//
// Its import makes the plugin start faster for users whose locale
// is English (or unset, or C): kubectl's help texts then are what the code
// says, and loading kubectl's translation catalogue, which its packages do
// on their first i18n.T while they initialize, costs ~14 ms of a ~40 ms
// start for nothing. Other locales load their translations as kubectl does.
//
// Import it for that side effect, from main. It depends only on kubectl's
// i18n package, and Go initializes packages in import-path order as soon as
// their imports are: this one ("github.com/...") runs right after i18n and
// before any "k8s.io/kubectl/pkg/cmd/..." package calls i18n.T.
package englishhelp

import (
	"os"
	"strings"

	"k8s.io/kubectl/pkg/util/i18n"
)

func init() {
	if !English(os.Getenv) {
		return
	}
	// Nothing to load: i18n.T returns its (English) argument.
	_ = i18n.SetLoadTranslationsFunc(func() error { return nil })
}

// English tells whether kubectl would use its default (English) texts for
// the locale in the environment: LC_ALL, LC_MESSAGES or LANG, the first set.
func English(getenv func(string) string) bool {
	lang := ""
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if lang = getenv(name); lang != "" {
			break
		}
	}
	base, _, _ := strings.Cut(lang, ".")
	switch {
	case lang == "", lang == "C", lang == "POSIX", base == "C", base == "en_US":
		return true
	case !strings.Contains(lang, "."):
		// kubectl falls back to its default texts for "de_DE" without a codeset.
		return true
	default:
		return false
	}
}
