#!/bin/sh
# The CGI program behind lighttpd (or any web server): tp-recv
# --cgi with this node's config. Install as /usr/local/lib/teleport/tp-recv.cgi,
# mode 0755, and make the spool writable by the user lighttpd runs CGI programs as.
exec /usr/local/bin/tp-recv --cgi -q --timeout 60 -c /etc/teleport/dst.ini
