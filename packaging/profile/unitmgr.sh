# Start the unitmgr user manager once per login (bash, zsh and other POSIX shells).
# Source this file from ~/.profile, ~/.bash_profile or ~/.zprofile:
#     . /path/to/unitmgr.sh
# A second login finds the running manager: `unitmgr --user --daemon` then
# exits 0 at once without starting another one.
if command -v unitmgr >/dev/null 2>&1; then
    unitmgr --user --daemon >/dev/null 2>&1 || echo "unitmgr: the manager did not start; see unitmgr.log in its state directory (~/.local/state/unitmgr by default)" >&2
fi
