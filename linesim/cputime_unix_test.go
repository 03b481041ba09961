//go:build unix

package linesim

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used, all threads and the GC included.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
