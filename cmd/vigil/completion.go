package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// completionScripts are the shell functions `vigil completion SHELL` prints. Each asks
// `vigil __complete WORDS... CURRENT` for candidates, so completion follows the binary's own
// commands and flags; with none, the shell completes file names.
var completionScripts = map[string]string{
	"bash": `# bash completion for vigil; load with: source <(vigil completion bash)
_vigil() {
	local IFS=$'\n'
	COMPREPLY=($(vigil __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "${COMP_WORDS[COMP_CWORD]}" 2>/dev/null))
	[ ${#COMPREPLY[@]} -eq 0 ] && compopt -o default
	return 0
}
complete -F _vigil vigil
`,
	"zsh": `#compdef vigil
# zsh completion for vigil; load with: source <(vigil completion zsh)
_vigil() {
	local -a c
	c=("${(@f)$(vigil __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
	if (( ${#c} )) && [[ -n ${c[1]} ]]; then compadd -a c; else _files; fi
}
compdef _vigil vigil
`,
	"fish": `# fish completion for vigil; load with: vigil completion fish | source
complete -c vigil -a '(vigil __complete (commandline -opc)[2..-1] (commandline -ct))'
`,
}

// runCompletion is `vigil completion bash|zsh|fish`.
func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newCmdFlags("completion", "vigil completion bash|zsh|fish",
		"Print the shell completion script: source <(vigil completion bash), source <(vigil completion zsh),\nor vigil completion fish | source.", stdout)
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage()
		return err
	case err != nil:
		return usageError{fmt.Errorf("completion: %w", err)}
	}
	if fs.NArg() != 1 || completionScripts[fs.Arg(0)] == "" {
		return usageError{fmt.Errorf("completion: name one shell: bash, zsh or fish")}
	}
	_, err := io.WriteString(stdout, completionScripts[fs.Arg(0)])
	return err
}

var (
	helpFlag = regexp.MustCompile(`^\s+--?([a-z][a-z0-9-]*)`)
	helpSub  = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}\S`)
)

// runComplete is the hidden `vigil __complete WORDS... CURRENT`: it prints the commands,
// subcommands or flags that complete CURRENT after WORDS, one a line, read from the help the
// commands print themselves.
func runComplete(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 0 {
		args = []string{""}
	}
	words, cur := args[:len(args)-1], args[len(args)-1]
	var path []string
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			break
		}
		path = append(path, w)
	}
	var cands []string
	if len(path) == 0 {
		for _, c := range commands() {
			cands = append(cands, c.name)
		}
	} else {
		var help bytes.Buffer
		run(ctx, append(append([]string(nil), path...), "-h"), &help, &help)
		for _, line := range strings.Split(help.String(), "\n") {
			if m := helpFlag.FindStringSubmatch(line); m != nil && strings.HasPrefix(cur, "-") {
				cands = append(cands, "--"+m[1])
			} else if m := helpSub.FindStringSubmatch(line); m != nil && !strings.HasPrefix(cur, "-") && len(words) == len(path) && len(path) == 1 {
				cands = append(cands, m[1])
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(c, cur) && !seen[c] {
			seen[c] = true
			fmt.Fprintln(stdout, c)
		}
	}
	return nil
}
