package jobs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// writeEvents writes n events to path: a realistic mix of ordinary syslog
// (cron, sshd publickey logins, sudo) and JSON application logs, with an
// intrusion episode on a fresh host every `every` events — an SSH brute
// force that succeeds, a backdoor account and a Falco shell-in-container
// alert — so findings are spread over the whole file. It returns the
// number of episodes. Lines are built with strconv appends into a bufio
// writer: a million take well under a second.
func writeEvents(t testing.TB, path string, n, every int) int {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var (
		line     []byte
		episodes int
		written  int
	)
	stamp := func(b []byte, ts time.Time) []byte { return ts.AppendFormat(b, time.Stamp) }
	emit := func() {
		line = append(line, '\n')
		w.Write(line)
		line = line[:0]
		written++
	}
	for written < n {
		i := written
		ts := base.Add(time.Duration(i) * 250 * time.Millisecond)
		if every > 0 && i%every == every/2 && written+16 <= n {
			episodes++
			host := fmt.Sprintf("srv%05d", episodes)
			ip := fmt.Sprintf("203.0.%d.%d", episodes/250%250, episodes%250+1)
			for k := range 12 {
				line = stamp(line, ts.Add(time.Duration(k)*3*time.Second))
				line = append(line, ' ')
				line = append(line, host...)
				line = append(line, " sshd["...)
				line = strconv.AppendInt(line, int64(3000+k), 10)
				line = append(line, "]: Failed password for root from "...)
				line = append(line, ip...)
				line = append(line, " port 4"...)
				line = strconv.AppendInt(line, int64(1000+k), 10)
				line = append(line, " ssh2"...)
				emit()
			}
			line = stamp(line, ts.Add(40*time.Second))
			line = fmt.Appendf(line, " %s sshd[3100]: Accepted password for root from %s port 41100 ssh2", host, ip)
			emit()
			line = stamp(line, ts.Add(50*time.Second))
			line = fmt.Appendf(line, " %s useradd[3159]: new user: name=svc%d, UID=0, GID=0, home=/home/svc%d, shell=/bin/bash, from=/dev/pts/1", host, episodes, episodes)
			emit()
			line = fmt.Appendf(line, `{"hostname":%q,"output":"%s: Notice A shell was spawned in a container with an attached terminal (user=root process=bash container_id=c%06d container_name=app%d)","output_fields":{"container.id":"c%06d","container.name":"app%d","proc.name":"bash","user.name":"root","evt.type":"execve"},"priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["container","mitre_execution","T1059"],"time":%q}`,
				host, ts.Add(55*time.Second).Format("15:04:05.000000000Z"), episodes, episodes, episodes, episodes,
				ts.Add(55*time.Second).Format(time.RFC3339Nano))
			emit()
			continue
		}
		switch i % 10 {
		case 0, 1, 2:
			line = stamp(line, ts)
			line = append(line, " web0"...)
			line = strconv.AppendInt(line, int64(i%4), 10)
			line = append(line, " CRON["...)
			line = strconv.AppendInt(line, int64(2000+i%5000), 10)
			line = append(line, "]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"...)
		case 3:
			line = stamp(line, ts)
			line = append(line, " web0"...)
			line = strconv.AppendInt(line, int64(i%4), 10)
			line = append(line, " sshd["...)
			line = strconv.AppendInt(line, int64(4000+i%5000), 10)
			line = append(line, "]: Accepted publickey for deploy from 10.0.0."...)
			line = strconv.AppendInt(line, int64(i%200+1), 10)
			line = append(line, " port 51509 ssh2: ED25519 SHA256:mK3pXzq1Yk9pC0Jd8fV2wq5bN7rT4uA6sE1hG3jL0oQ"...)
		case 4:
			line = stamp(line, ts)
			line = append(line, " web01 sudo:    deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"...)
		default:
			line = append(line, `{"time":"`...)
			line = ts.AppendFormat(line, time.RFC3339)
			line = append(line, `","level":"info","logger":"checkout","msg":"payment authorised","order_id":`...)
			line = strconv.AppendInt(line, int64(i), 10)
			line = append(line, `,"user":"customer`...)
			line = strconv.AppendInt(line, int64(i%977), 10)
			line = append(line, `@example.com","duration_ms":`...)
			line = strconv.AppendInt(line, int64(i%300), 10)
			line = append(line, `,"host":"app0`...)
			line = strconv.AppendInt(line, int64(i%3), 10)
			line = append(line, `"}`...)
		}
		emit()
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return episodes
}
