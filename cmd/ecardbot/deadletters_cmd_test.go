package main

import (
	"strings"
	"testing"
)

// The dead-letter transitions themselves are tested in store/delivery_test.go on both
// dialects; this checks the commands' wiring, output and argument rules.
func TestDeadLettersCommands(t *testing.T) {
	t.Parallel()
	for _, b := range commandBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := b.env(t)
			if out, _ := mustRunCommand(t, env, "deadletters", "list"); !strings.HasPrefix(out, "ID") || strings.Count(out, "\n") != 1 {
				t.Errorf("list on an empty database printed %q", out)
			}
			if out, _ := mustRunCommand(t, env, "deadletters", "replay", "--all"); out != "deadletters: 0 replayed\n" {
				t.Errorf("replay --all printed %q", out)
			}
			if out, _ := mustRunCommand(t, env, "deadletters", "replay", "00000000-0000-4000-8000-000000000000"); out != "deadletters: 0 replayed\n" {
				t.Errorf("replay of an unknown id printed %q", out)
			}
			for _, args := range [][]string{
				{"deadletters", "replay"},
				{"deadletters", "replay", "--all", "00000000-0000-4000-8000-000000000000"},
				{"deadletters", "list", "--limit", "0"},
			} {
				if _, _, err := runCommand(env, args...); err == nil {
					t.Errorf("ecardbot %s succeeded", strings.Join(args, " "))
				}
			}
			out, _, err := runCommand(nil, "deadletters", "replay", "--help")
			if err != nil || !strings.Contains(out, "retry key") || !strings.Contains(out, "ECARDBOT_DATABASE_URL") {
				t.Errorf("replay --help = %q, %v", out, err)
			}
		})
	}
}
