package englishhelp

import "testing"

func TestEnglish(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{env: map[string]string{}, want: true},
		{env: map[string]string{"LANG": "C"}, want: true},
		{env: map[string]string{"LANG": "C.UTF-8"}, want: true},
		{env: map[string]string{"LANG": "en_US.UTF-8"}, want: true},
		{env: map[string]string{"LANG": "de_DE.UTF-8"}, want: false},
		{env: map[string]string{"LANG": "en_US.UTF-8", "LC_MESSAGES": "ja_JP.UTF-8"}, want: false},
		{env: map[string]string{"LANG": "ja_JP.UTF-8", "LC_ALL": "C"}, want: true},
		{env: map[string]string{"LANG": "fr_FR"}, want: true},
	}
	for _, tc := range tests {
		if got := English(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("English(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}
