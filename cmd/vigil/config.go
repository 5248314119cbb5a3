package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// maxConfigBytes bounds a --config file.
const maxConfigBytes = 1 << 20

// expandConfig replaces --config FILE in a command's arguments by the flags the file sets. The
// file's keys are the command's flag names, one "key = value" a line ('#' starts a comment;
// a key may repeat for repeatable flags such as trustee). The file's flags go before the
// command line's, so a flag given on the command line wins. Subcommand names (trustee serve,
// admin pause) stay in front.
func expandConfig(args []string) ([]string, error) {
	path, rest, err := configFlag(args)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return args, nil
	}
	flags, err := readConfig(path)
	if err != nil {
		return nil, usageError{err}
	}
	at := len(rest)
	for i, a := range rest {
		if strings.HasPrefix(a, "-") {
			at = i
			break
		}
	}
	out := append(append(append([]string(nil), rest[:at]...), flags...), rest[at:]...)
	return out, nil
}

// configFlag returns the file --config names in args ("" if none) and args without it.
func configFlag(args []string) (path string, rest []string, err error) {
	rest = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		switch {
		case a == "--config" || a == "-config":
			if i+1 == len(args) {
				return "", nil, usageError{fmt.Errorf("--config needs a file")}
			}
			path = args[i+1]
			i++
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			path = a[strings.Index(a, "=")+1:]
		default:
			rest = append(rest, a)
		}
	}
	return path, rest, nil
}

// readConfig reads a --config file into flags.
func readConfig(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("--config %s: larger than %d bytes", path, maxConfigBytes)
	}
	var flags []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" || strings.HasPrefix(key, "-") || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("--config %s:%d: want \"flag-name = value\", got %q", path, n, line)
		}
		if key == "config" {
			return nil, fmt.Errorf("--config %s:%d: a config file cannot name another", path, n)
		}
		flags = append(flags, "--"+key+"="+strings.Trim(value, `"`))
	}
	return flags, sc.Err()
}

// fromConfig names the --config file in err when err is a flag the command does not define
// and the file set it: "flag provided but not defined: -bogus-key" alone sent operators
// looking at the command line.
func fromConfig(args []string, err error) error {
	if err == nil {
		return nil
	}
	_, name, ok := strings.Cut(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err
	}
	name, _, _ = strings.Cut(name, " ")
	name = strings.TrimPrefix(name, "-")
	path, _, perr := configFlag(args)
	if perr != nil || path == "" {
		return err
	}
	flags, rerr := readConfig(path)
	if rerr != nil {
		return err
	}
	for _, f := range flags {
		if strings.HasPrefix(f, "--"+name+"=") {
			return fmt.Errorf("%w (%q is set in --config %s)", err, name, path)
		}
	}
	return err
}
