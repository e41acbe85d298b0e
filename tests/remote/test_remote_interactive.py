"""The interactive shell on a remote host, under a pseudo-terminal."""

from __future__ import annotations

import pexpect
from sshclient import UNITSH, ClientHome, RemoteHost


def test_interactive_questions_then_prompt(new_client: ClientHome, remote_host: RemoteHost):
    env = dict(new_client.env(), TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(UNITSH[0], [*UNITSH[1:], "--remote-command", remote_host.manager.command, "hosta"],
                          env=env, encoding="utf-8", timeout=20, dimensions=(24, 120))
    try:
        child.expect_exact("can't be established.")
        child.expect_exact("Add it to known_hosts? [y/N]")
        child.sendline("y")
        child.expect_exact("Add it to the authorized_keys there? [y/N]")
        child.sendline("yes")
        child.expect_exact("authorised this client's key on hosta")
        # Not "unitsh@hosta> ": prompt_toolkit draws the trailing space as a cursor move.
        child.expect_exact("unitsh@hosta>")
        child.sendline("is-active web")
        # The output line, not the echo of "is-active web".
        child.expect_exact("active\r\n")
        child.expect_exact("unitsh@hosta>")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()
    assert child.exitstatus == 0
    assert new_client.host_name in new_client.known_hosts.read_text()


def test_interactive_no_to_host_key(new_client: ClientHome, remote_host: RemoteHost):
    env = dict(new_client.env(), TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(UNITSH[0], [*UNITSH[1:], "--remote-command", remote_host.manager.command, "hosta"],
                          env=env, encoding="utf-8", timeout=20, dimensions=(24, 120))
    try:
        child.expect_exact("Add it to known_hosts? [y/N]")
        child.sendline("")
        child.expect_exact("is not in")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()
    assert child.exitstatus == 1
    assert not new_client.known_hosts.exists()
