# Start the unitmgr user manager once per login (fish).
# Copy this file to ~/.config/fish/conf.d/unitmgr.fish.
if status is-login; and command -q unitmgr
    unitmgr --user --daemon >/dev/null 2>&1
    or echo "unitmgr: the manager did not start; see unitmgr.log in its state directory (~/.local/state/unitmgr by default)" >&2
end
