package main

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

var (
	atxHeading  = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	inlineLink  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag     = regexp.MustCompile(`</?[a-zA-Z][^>]*>`)
	htmlAnchor  = regexp.MustCompile(`<a\s+(?:[^>]*\s)?(?:name|id)="([^"]+)"`)
	emphasisRun = regexp.MustCompile(`\*+`)
)

// headingText is what GitHub renders of a heading's Markdown: link and code
// text without their markup, no emphasis markers, no HTML tags.
func headingText(md string) string {
	md = inlineLink.ReplaceAllString(md, "$1")
	md = htmlTag.ReplaceAllString(md, "")
	md = strings.ReplaceAll(md, "`", "")
	return emphasisRun.ReplaceAllString(md, "")
}

// slug is GitHub's anchor for a heading (github-slugger): lower case,
// letters, digits, '-' and '_' kept, each space a '-', the rest dropped.
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case unicode.IsLetter(r), unicode.IsNumber(r), unicode.IsMark(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors are the fragment targets of a Markdown file, in order: heading
// slugs (a repeated slug gets -1, -2, ... as on GitHub) and explicit
// <a name|id="..."> anchors. Headings inside code fences do not count.
func anchors(content string) []string {
	var out []string
	seen := map[string]int{}
	var fence string
	for _, line := range strings.Split(content, "\n") {
		if marker, _, ok := fenceLine(line); ok {
			switch {
			case fence == "":
				fence = marker
				continue
			case strings.HasPrefix(marker, fence[:1]) && len(marker) >= len(fence):
				fence = ""
				continue
			}
		}
		if fence != "" {
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(headingText(m[2]))
		if n := seen[s]; n > 0 {
			out = append(out, s+"-"+strconv.Itoa(n))
		} else {
			out = append(out, s)
		}
		seen[s]++
	}
	return out
}

var fence = regexp.MustCompile("^[ \t]*(`{3,}|~{3,})[ \t]*([^`\\s]*)")

// fenceLine says whether line opens or closes a code fence, with its marker
// and info string (the block's language).
func fenceLine(line string) (marker, lang string, ok bool) {
	m := fence.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	return m[1], strings.ToLower(m[2]), true
}
