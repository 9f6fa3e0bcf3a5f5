// The one program in this suite's images: a pause process for Pod sandboxes, and the "application"
// the ECR-shaped registry serves. It prints what it is, then waits for SIGTERM or SIGINT, reaping
// any child it inherits (a sandbox's first process is PID 1 of the Pod). Static, no dependencies.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	fmt.Printf("%s running (%s)\n", os.Getenv("TINY_ROLE"), os.Getenv("TINY_IMAGE"))
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
