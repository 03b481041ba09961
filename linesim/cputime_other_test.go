//go:build !unix

package linesim

import "time"

// processCPU returns zero where getrusage is missing; benchmarks then report no CPU time.
func processCPU() time.Duration { return 0 }
