import pytest
from unit_text import CONTEXT, unit_from
from unitmgr.units import names
from unitmgr.units.specifiers import SpecifierContext, UnitIdentity, expand
from unitmgr.units.values import UnitValueError


def test_split_and_validate():
    assert names.split_name("web.service") == ("web", None, "service")
    assert names.split_name("worker@.service") == ("worker", "", "service")
    assert names.split_name("worker@a-b.service") == ("worker", "a-b", "service")
    assert not names.is_valid_name("web")
    assert not names.is_valid_name("a@b@c.service")
    assert not names.is_valid_name("sp ace.service")
    assert not names.is_valid_name("x" * 250 + ".service")
    with pytest.raises(ValueError, match="invalid unit name"):
        names.split_name("nope")


def test_templates_and_instances():
    assert names.template_of("worker@1.service") == "worker@.service"
    assert names.template_of("web.service") is None
    assert names.instance_name("worker@.service", "2") == "worker@2.service"
    with pytest.raises(ValueError):
        names.instance_name("web.service", "2")


def test_complete_name():
    assert names.complete_name("web") == "web.service"
    assert names.complete_name("x.socket") == "x.socket"


@pytest.mark.parametrize(
    ("text", "path", "escaped"),
    [("my dir/foo-bar", False, "my\\x20dir-foo\\x2dbar"), ("/", True, "-"),
     ("/home//ann/", True, "home-ann"), (".hidden", False, "\\x2ehidden"), ("é", False, "\\xc3\\xa9")],
)
def test_escape_like_systemd_escape(text, path, escaped):
    assert names.escape(text, path=path) == escaped


def test_unescape():
    assert names.unescape("a-b\\x2dc") == "a/b-c"
    assert names.unescape("home-ann", path=True) == "/home/ann"


def test_all_specifiers_resolve():
    unit = UnitIdentity("rclone@my\\x2ddrive.service", "/home/ann/.config/unitmgr/units/rclone@.service")
    context = SpecifierContext(
        user="ann", uid=1000, group="ann", gid=100, home="/home/ann", shell="/bin/bash",
        runtime_dir="/run/user/1000", state_dir="/s", cache_dir="/c", config_dir="/e",
        data_dir="/d", tmp_dir="/tmp", hostname="box.example.org", machine_id="m" * 32,
        boot_id="b" * 32, kernel_release="6.1.0", architecture="x86-64",
        os_release={"ID": "debian", "VERSION_ID": "12"})
    expected = {
        "n": "rclone@my\\x2ddrive.service", "N": "rclone@my\\x2ddrive", "p": "rclone",
        "P": "rclone", "i": "my\\x2ddrive", "I": "my-drive", "j": "rclone", "f": "/my-drive",
        "u": "ann", "U": "1000", "g": "ann", "G": "100", "h": "/home/ann", "s": "/bin/bash",
        "t": "/run/user/1000", "S": "/s", "C": "/c", "L": "/s/log", "E": "/e", "D": "/d",
        "T": "/tmp", "V": "/var/tmp", "y": "/home/ann/.config/unitmgr/units/rclone@.service",
        "Y": "/home/ann/.config/unitmgr/units", "H": "box.example.org", "l": "box",
        "q": "box", "m": "m" * 32, "b": "b" * 32, "v": "6.1.0", "a": "x86-64", "o": "debian",
        "w": "12", "W": "", "%": "%",
    }
    for letter, value in expected.items():
        assert expand(f"%{letter}", unit, context) == value, letter


def test_last_dash_component_specifier():
    assert expand("%j/%J", UnitIdentity("a-b-c.service"), CONTEXT) == "c/c"


def test_unknown_specifier_raises():
    with pytest.raises(UnitValueError, match="%Z"):
        expand("x %Z", UnitIdentity("a.service"), CONTEXT)


def test_context_from_environment_uses_xdg_variables():
    context = SpecifierContext.from_environment({
        "HOME": "/h", "XDG_RUNTIME_DIR": "/r", "XDG_CONFIG_HOME": "/cfg", "TMPDIR": "/tt"})
    assert (context.home, context.runtime_dir, context.config_dir) == ("/h", "/r", "/cfg")
    assert context.state_dir == "/h/.local/state"
    assert context.tmp_dir == "/tt"
    assert context.var_tmp_dir == "/tt"


def test_install_allows_only_systemds_specifiers():
    unit = unit_from("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=a-%t.target b-%u.target\n"
                     "Alias=x-%H.service\n", name="w@i.service")
    assert unit.load_state == "loaded"
    assert unit.settings["Install"]["WantedBy"] == ["b-ann.target"]
    assert unit.settings["Install"]["Alias"] == ["x-box.example.org.service"]
    (problem,) = [str(d) for d in unit.diagnostics]
    assert problem.startswith('/u/w@i.service:4: [Install] WantedBy=: Failed to resolve unit name in '
                              'WantedBy="a-%t.target": invalid specifier in [Install]: %t, ignoring')
