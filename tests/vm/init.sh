#!/bin/busybox sh
# PID 1 of the test VM that harness.py boots. It mounts the host's root file
# system read-only over 9p and gives the guest a cgroup v2 hierarchy with the
# memory, pids, cpu and io controllers. Then it runs the run.sh that the host
# put in the shared results directory, and powers the VM off.
/bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "unitmgr-vm: init started"

fail() {
    echo "unitmgr-vm: $*"
    poweroff -f
}

# /modules/order lists the modules in load order (dependencies first).
while read -r module; do
    insmod "/modules/$module" || fail "could not load the kernel module $module"
done < /modules/order

NINEP=trans=virtio,version=9p2000.L,msize=524288
mount -t 9p -o "$NINEP,ro,cache=loose" hostroot /newroot || fail "could not mount the host's root over 9p"
root=/newroot
for dir in /tmp /run /var/tmp; do
    mount -t tmpfs -o mode=1777 tmpfs "$root$dir" || fail "could not mount a tmpfs on $dir"
done
# The tmpfs mounts above hide a checkout under /tmp or /var/tmp, so mount it again at its path.
for word in $(cat /proc/cmdline); do
    case "$word" in unitmgr_repo=*) repo="${word#unitmgr_repo=}" ;; esac
done
if [ -n "$repo" ] && [ ! -d "$root$repo" ]; then
    mkdir -p "$root$repo"
    mount -t 9p -o "$NINEP,ro,cache=loose" repo "$root$repo" || fail "could not mount the checkout $repo"
fi
for dir in /proc /sys /dev; do
    mount --move "$dir" "$root$dir" || fail "could not move $dir into the new root"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o ptmxmode=0666 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"

mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup" || fail "could not mount cgroup2"
echo "+memory +pids +cpu +io" > "$root/sys/fs/cgroup/cgroup.subtree_control" \
    || fail "could not enable the memory, pids, cpu and io controllers"
echo "unitmgr-vm: cgroup v2 controllers: $(cat "$root/sys/fs/cgroup/cgroup.subtree_control")"

mkdir -p "$root/tmp/vm-results"
mount -t 9p -o "$NINEP" results "$root/tmp/vm-results" || fail "could not mount the results directory"
ip link set lo up || fail "could not bring up the loopback interface"

chroot "$root" /bin/sh /tmp/vm-results/run.sh
echo "unitmgr-vm: run.sh exited with $?"
sync
umount "$root/tmp/vm-results"
poweroff -f
