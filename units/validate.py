"""Whole-unit checks that systemd 252 runs after loading, and that refuse a unit.

Each check returns the message systemd prints; the loader turns a message
into load state "bad-setting".
"""

from __future__ import annotations

from unitmgr.units.model import Unit

_LISTEN_KEYS = ("ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO",
                "ListenSpecial", "ListenNetlink", "ListenMessageQueue", "ListenUSBFunction")
_TIMER_KEYS = ("OnActiveSec", "OnBootSec", "OnStartupSec", "OnUnitActiveSec",
               "OnUnitInactiveSec", "OnCalendar")
_PATH_KEYS = ("PathExists", "PathExistsGlob", "PathChanged", "PathModified", "DirectoryNotEmpty")


def _check_service(unit: Unit) -> str | None:
    service = unit.settings.get("Service", {})
    starts = service.get("ExecStart", [])
    success_action = unit.settings.get("Unit", {}).get("SuccessAction", "none") != "none"
    service_type = unit.get("Service", "Type")
    if not starts and not service.get("ExecStop") and not success_action:
        return ("Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing. "
                "Add an ExecStart= line with the command to run")
    if not starts and service_type != "oneshot":
        return ("Service has no ExecStart= setting, which is only allowed for Type=oneshot "
                "services. Refusing.")
    if not starts and not unit.get("Service", "RemainAfterExit") and not success_action:
        return ("Service has no ExecStart= and no SuccessAction= settings and does not have "
                "RemainAfterExit=yes set. Refusing.")
    if len(starts) > 1 and service_type != "oneshot":
        return ("Service has more than one ExecStart= setting, which is only allowed for "
                "Type=oneshot services. Refusing. Remove the extra lines or reset the list "
                "with an empty ExecStart= first")
    restart = unit.get("Service", "Restart")
    if service_type == "oneshot" and restart in ("always", "on-success"):
        return ("Service has Restart= set to either always or on-success, which isn't allowed "
                "for Type=oneshot services. Refusing. "
                f"Use Restart=on-failure or drop Restart={restart}")
    if service_type == "dbus" and not service.get("BusName"):
        return ("Service is of type D-Bus but no D-Bus service name has been specified. "
                "Refusing. Add BusName=")
    return None


def _check_socket(unit: Unit) -> str | None:
    socket = unit.settings.get("Socket", {})
    if not any(socket.get(key) for key in _LISTEN_KEYS):
        return ("Unit has no Listen setting (ListenStream=, ListenDatagram=, ListenFIFO=, ...). "
                "Refusing.")
    if socket.get("Accept") and socket.get("Service"):
        return "Explicit service configuration for accepting socket units not supported. Refusing."
    return None


def _check_timer(unit: Unit) -> str | None:
    timer = unit.settings.get("Timer", {})
    has_values = any(timer.get(key) for key in _TIMER_KEYS)
    if not has_values and not timer.get("OnClockChange") and not timer.get("OnTimezoneChange"):
        return "Timer unit lacks value setting. Refusing. Add OnCalendar= or an On*Sec= line"
    return None


def _check_path(unit: Unit) -> str | None:
    if not any(unit.settings.get("Path", {}).get(key) for key in _PATH_KEYS):
        return "Path unit lacks path setting. Refusing. Add PathExists= or a similar line"
    return None


_CHECKS = {"service": _check_service, "socket": _check_socket, "timer": _check_timer,
           "path": _check_path}  # fmt: skip


def check_unit(unit: Unit) -> str | None:
    """Return why systemd would refuse `unit` as a whole, or None."""
    check = _CHECKS.get(unit.kind)
    return check(unit) if check else None
