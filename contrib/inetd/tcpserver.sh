#!/bin/sh
# tp-recv over HTTP on port 8089 under tcpserver (ucspi-tcp): one process
# per connection, at most 16 at once, as user teleport. -H -R -l0: no DNS
# or ident lookups. Log lines of tp-recv go to standard error.
exec tcpserver -c 16 -HRl0 -u "$(id -u teleport)" -g "$(id -g teleport)" \
	0 8089 /usr/local/bin/tp-recv --inetd -q --timeout 60 -c /etc/teleport/dst.ini
