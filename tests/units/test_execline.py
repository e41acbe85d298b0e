import pytest
from unit_text import CONTEXT
from unitmgr.units.execline import expand_command, parse_exec
from unitmgr.units.model import ExecCommand
from unitmgr.units.specifiers import UnitIdentity
from unitmgr.units.values import UnitValueError

UNIT = UnitIdentity("web@my\\x2ddrive.service", "/u/web@.service")


def parse(value: str) -> list[ExecCommand]:
    return parse_exec(value, UNIT, CONTEXT)[0]


def argv(value: str, env: dict[str, str] | None = None) -> list[str]:
    (command,) = parse(value)
    return expand_command(command, env or {}, "/usr/bin:/bin")[1]


def test_quoting_and_escapes():
    assert parse('/bin/echo "a b" \'c d\' x"e f"y \\x41 \\101 \\s \\t')[0].words == (
        "/bin/echo", "a b", "c d", "xe fy", "A", "A", " ", "\t")


def test_unknown_escape_kept_with_warning():
    commands, warnings = parse_exec('/bin/echo "a\\qb"', UNIT, CONTEXT)
    assert commands[0].words == ("/bin/echo", "a\\qb")
    assert warnings and "unknown escape" in warnings[0]


def test_prefixes_parsed():
    (command,) = parse("-@:/bin/echo myname $HOME")
    assert command.ignore_failure
    assert command.argv0_given
    assert command.no_env_expand
    assert command.words == ("/bin/echo", "myname", "$HOME")
    assert parse("!!/bin/true")[0].privilege == "!!"
    assert parse("+/bin/true")[0].privilege == "+"
    assert parse('"-/bin/true"')[0].ignore_failure


@pytest.mark.parametrize(
    "value",
    ["+!/bin/true", "bin/true", "/bin/", "@/bin/true", '/bin/echo "open', "/bin/echo %Z",
     "@bindir@/foo", "/bin/tr\\x01ue"],
)
def test_fatal_command_lines(value):
    with pytest.raises(UnitValueError) as caught:
        parse(value)
    assert caught.value.fatal


def test_dash_prefix_downgrades_errors():
    with pytest.raises(UnitValueError) as caught:
        parse('-/bin/echo "open')
    assert not caught.value.fatal


def test_semicolon_separates_and_escaped_semicolon_is_argument():
    commands = parse("/bin/echo a ; /bin/echo b \\; c")
    assert [c.words for c in commands] == [("/bin/echo", "a"), ("/bin/echo", "b", ";", "c")]


def test_specifiers_expanded_per_word():
    (command,) = parse("/bin/echo %% %n %i %I %p %h %u %U %t 100%")
    assert command.words[1:] == ("%", "web@my\\x2ddrive.service", "my\\x2ddrive", "my-drive",
                                 "web", "/home/ann", "ann", "1000", "/run/user/1000", "100%")


def test_systemd_documented_braces_example():
    # systemd.service(5): ${ONE} ${TWO} ${THREE} keep the values exactly, one argument each.
    env = {"ONE": "'one'", "TWO": "'two two' too", "THREE": ""}
    assert argv("/bin/echo ${ONE} ${TWO} ${THREE}", env)[1:] == ["'one'", "'two two' too", ""]
    assert argv("/bin/echo $ONE $TWO $THREE", env)[1:] == ["one", "two two", "too"]


def test_systemd_documented_split_example():
    env = {"ONE": "one", "TWO": "two two"}
    assert argv("/bin/echo $ONE $TWO ${TWO}", env)[1:] == ["one", "two", "two", "two two"]


def test_dollar_rules():
    env = {"A": "x y", "B": "b"}
    assert argv('/bin/echo $$ ${A}z pre$B "${B} d" $UNSET ${UNSET}', env)[1:] == [
        "$", "x yz", "pre$B", "b d", ""]


def test_colon_prefix_disables_expansion():
    assert argv(":/bin/echo $A ${A} $$", {"A": "1"})[1:] == ["$A", "${A}", "$$"]


def test_argv0_prefix():
    (command,) = parse("@/bin/echo myname arg")
    assert expand_command(command, {}, "") == ("/bin/echo", ["myname", "arg"])


def test_executable_word_never_expanded_and_bare_names_resolved():
    (command,) = parse("$BIN x")
    assert expand_command(command, {"BIN": "/bin/true"}, "/usr/bin")[0] == "$BIN"
    (bare,) = parse("sh -c true")
    path, args = expand_command(bare, {}, "/nonexistent:/bin:/usr/bin")
    assert path in ("/bin/sh", "/usr/bin/sh")
    assert args == ["sh", "-c", "true"]
    (missing,) = parse("no-such-program-here")
    assert expand_command(missing, {}, "/bin")[0] == "no-such-program-here"


def test_trailing_backslash_and_partial_hex_kept():
    assert parse("/bin/echo a\\")[0].words == ("/bin/echo", "a\\")
    assert parse("/bin/echo a\\x4")[0].words == ("/bin/echo", "a\\x4")
