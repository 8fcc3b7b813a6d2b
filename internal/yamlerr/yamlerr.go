// Package yamlerr is the error of a YAML file that could not be used (the
// rules file, read by match and redact alike), naming the file and line.
package yamlerr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error reads "rules.yaml:7: msg"; without a file "line 7: msg"; without a
// line "rules.yaml: msg".
type Error struct {
	File string // "" when parsed from bytes alone
	Line int    // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// At is an *Error at line (0: unknown) of file ("": none).
func At(file string, line int, format string, args ...any) error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Syntax is yaml.Unmarshal's err as an *Error at the line it names (0 when
// it names none).
func Syntax(file string, err error) *Error {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// InFile names file in err when it is an *Error; err is returned.
func InFile(err error, file string) error {
	var e *Error
	if errors.As(err, &e) {
		e.File = file
	}
	return err
}
