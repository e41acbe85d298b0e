from unitmgr.units.envfile import parse_environment_file


def test_environment_file_rules():
    text = (
        "A=1\n"
        "# comment\n"
        "  ; also a comment\n"
        "B =  two words  \n"
        "C='multi\nline $x \\n'\n"
        'D="a \\"b\\" \\$c \\q"\n'
        "E=x\\\ny\n"
        "F=a\\ b\n"
        "export G=1\n"
        "no equals\n"
        'H="  spaced  "  \n'
        "1BAD=x\n"
        "A=override\n"
        'I="joined \\\nline"\n'
    )
    assert parse_environment_file(text) == {
        "A": "override", "B": "two words", "C": "multi\nline $x \\n", "D": 'a "b" $c \\q',
        "E": "xy", "F": "a b", "H": "  spaced  ", "I": "joined line",
    }


def test_environment_file_empty_value_and_no_trailing_newline():
    assert parse_environment_file("A=\nB=2") == {"A": "", "B": "2"}
