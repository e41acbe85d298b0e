from hypothesis import given, settings
from hypothesis import strategies as st
from unit_text import CONTEXT
from unitmgr.units import names
from unitmgr.units.envfile import parse_environment_file
from unitmgr.units.execline import expand_arguments, parse_exec
from unitmgr.units.loader import build_unit
from unitmgr.units.quoting import quote_word, split_words
from unitmgr.units.specifiers import UnitIdentity
from unitmgr.units.values import UnitValueError

UNIT_ALPHABET = st.sampled_from(list("[]=\\#;\n \t\"'%$@-:+!/abcXY{}01"))
unit_text = st.text(UNIT_ALPHABET, max_size=200) | st.text(max_size=200)


@settings(max_examples=300, deadline=None)
@given(unit_text)
def test_loader_never_raises_on_arbitrary_text(text):
    for name in ("fuzz.service", "fuzz@x.service", "fuzz.socket", "fuzz.timer", "fuzz.target"):
        unit = build_unit(name, ("/f", text), [("/d.conf", text)], CONTEXT)
        assert unit.load_state in ("loaded", "bad-setting")


@settings(max_examples=300, deadline=None)
@given(unit_text)
def test_exec_parser_raises_only_its_own_error(text):
    try:
        commands, _ = parse_exec(text, UnitIdentity("a.service"), CONTEXT)
    except UnitValueError:
        return
    for command in commands:
        expand_arguments(list(command.words), {"A": text})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_environment_file_never_raises(text):
    parse_environment_file(text)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=50))
def test_escape_round_trips(text):
    assert names.unescape(names.escape(text)) == text


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50))
def test_escaped_instance_names_are_valid(text):
    name = names.instance_name("worker@.service", names.escape(text))
    assert names.is_valid_name(name) or len(name) > names.MAX_NAME_LENGTH


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        max_size=20), max_size=5))
def test_quote_word_round_trips(words):
    line = " ".join(quote_word(w) for w in words)
    assert [w.text for w in split_words(line)] == words
