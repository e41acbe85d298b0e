import time

from unit_text import CONTEXT
from unitmgr.units.loader import UnitLoader

SIMPLE_UNIT = """\
[Unit]
Description=Worker %n
After=db.service
Wants=db.service

[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --bind 127.0.0.1
Restart=on-failure
RestartSec=2
Environment=A=1 "B=two words"
LimitNOFILE=4096

[Install]
WantedBy=default.target
"""


def test_loading_500_units_takes_under_1ms_each(tmp_path):
    for index in range(500):
        (tmp_path / f"worker{index}.service").write_text(SIMPLE_UNIT)
    loader = UnitLoader([tmp_path], CONTEXT)
    started = time.perf_counter()
    units = [loader.load(f"worker{index}.service") for index in range(500)]
    per_unit = (time.perf_counter() - started) / 500
    assert all(u.load_state == "loaded" for u in units)
    assert per_unit < 0.001, f"{per_unit * 1000:.3f} ms per unit"
