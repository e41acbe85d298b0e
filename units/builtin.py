"""Units every user manager has without a file: the special targets of systemd.special(7).

The texts follow what systemd 252 ships in /usr/lib/systemd/user. A unit
file with the same name anywhere in the search path replaces the built-in.
"""

from __future__ import annotations

BUILTIN_PATH_PREFIX = "<builtin>/"

BUILTIN_UNITS: dict[str, str] = {
    "default.target": """\
[Unit]
Description=Main User Target
Documentation=man:systemd.special(7)
Requires=basic.target
After=basic.target
AllowIsolate=yes
""",
    "basic.target": """\
[Unit]
Description=Basic System
Documentation=man:systemd.special(7)
Wants=sockets.target timers.target paths.target
After=sockets.target timers.target paths.target
""",
    # TODO: systemd's exit.target also requires systemd-exit.service, which runs
    # SuccessAction=exit-force; unitmgr does not implement SuccessAction= yet.
    "exit.target": """\
[Unit]
Description=Exit the Session
Documentation=man:systemd.special(7)
DefaultDependencies=no
AllowIsolate=yes
""",
    "graphical-session.target": """\
[Unit]
Description=Current graphical user session
Documentation=man:systemd.special(7)
Requires=basic.target
RefuseManualStart=yes
StopWhenUnneeded=yes
""",
    "sockets.target": """\
[Unit]
Description=Sockets
Documentation=man:systemd.special(7)
""",
    "timers.target": """\
[Unit]
Description=Timers
Documentation=man:systemd.special(7)
""",
    "paths.target": """\
[Unit]
Description=Paths
Documentation=man:systemd.special(7)
""",
    "shutdown.target": """\
[Unit]
Description=Shutdown
Documentation=man:systemd.special(7)
DefaultDependencies=no
RefuseManualStart=yes
""",
}
