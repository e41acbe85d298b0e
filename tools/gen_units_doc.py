"""Write docs/units.md from the directive declarations in units/."""

from pathlib import Path

from unitmgr.units.reference_doc import render_units_doc


def main() -> None:
    target = Path(__file__).resolve().parents[1] / "docs" / "units.md"
    target.write_text(render_units_doc())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
