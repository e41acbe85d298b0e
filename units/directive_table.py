# ruff: noqa: E501  (one declaration per line reads better than wrapped help texts)
"""The declaration table: every directive systemd 252 defines for user units.

One line per directive: `Name kind default owner help`. `kind` selects the
value parser (see `units.assign`), `default` is parsed with that same parser
(`-` means no value, i.e. `None` or an empty list), `owner` is `yes` for a
directive unitmgr implements or the key of `OWNER_REASONS` saying why not,
and `help` is the rest of the line. A group header `[Section]` starts a
section; `@exec`, `@kill` and `@cgroup` are shared groups that several
sections include. The key list matches systemd 252's `load-fragment`
table, so a key missing here is exactly a key systemd 252 calls unknown.
Three later keys are added because the manager implements them:
RestartSteps=, RestartMaxDelaySec= (systemd 254) and ReloadSignal= (253),
and Type= also accepts notify-reload (253).
"""

OWNER_REASONS: dict[str, str] = {
    "deps": "this dependency setting is not implemented",
    "sockets": "this socket option is not implemented (docs/sockets.md lists the supported ones)",
    "timers": "timer units are not implemented",
    "paths": "path units are not implemented",
    "cgroup": "this resource-control setting is not implemented (docs/resources.md lists the supported ones)",
    "sandbox": "sandboxing is not implemented: it needs namespaces a user manager cannot always set up",
    "user": "switching users, groups or security contexts needs privileges a user manager lacks",
    "later": "not implemented",
    "obsolete": "obsolete: systemd 252 itself ignores it or maps it to a newer setting",
    "system": "only meaningful in the system manager",
    "dbus": "D-Bus activation is not implemented",
    "creds": "service credentials are not implemented",
    "logging": "journal settings do not apply: unitmgr writes its own per-unit logs",
}

SHARED_GROUPS = """
@exec
Environment environment - yes Environment variables for executed processes, as NAME=value words
EnvironmentFile envfile - yes Files with NAME=value lines read when a process is spawned; a leading - ignores a missing file
PassEnvironment words - yes No effect in a user manager: services already inherit the manager's environment
UnsetEnvironment words - yes Variables (NAME or NAME=value) removed from the environment of executed processes
WorkingDirectory string ~ yes Working directory of executed processes; ~ is the home directory, a leading - ignores a missing one
UMask mode - yes File mode creation mask (octal); unset inherits the manager's umask
Nice nice - yes Scheduling priority (-20..19) of executed processes; unset inherits
LimitCPU rlimit - yes RLIMIT_CPU: CPU time, seconds or a time span
LimitFSIZE rlimit - yes RLIMIT_FSIZE: largest file size, bytes
LimitDATA rlimit - yes RLIMIT_DATA: data segment size, bytes
LimitSTACK rlimit - yes RLIMIT_STACK: stack size, bytes
LimitCORE rlimit - yes RLIMIT_CORE: core file size, bytes
LimitRSS rlimit - yes RLIMIT_RSS: resident set size, bytes (no effect on Linux)
LimitNOFILE rlimit - yes RLIMIT_NOFILE: number of open files
LimitAS rlimit - yes RLIMIT_AS: address space size, bytes
LimitNPROC rlimit - yes RLIMIT_NPROC: number of processes of the user
LimitMEMLOCK rlimit - yes RLIMIT_MEMLOCK: locked memory, bytes
LimitLOCKS rlimit - yes RLIMIT_LOCKS: number of file locks
LimitSIGPENDING rlimit - yes RLIMIT_SIGPENDING: number of queued signals
LimitMSGQUEUE rlimit - yes RLIMIT_MSGQUEUE: POSIX message queue bytes
LimitNICE rlimit - yes RLIMIT_NICE: +N/-N nice value, or a raw 0..40 number
LimitRTPRIO rlimit - yes RLIMIT_RTPRIO: real-time priority 0..99
LimitRTTIME rlimit - yes RLIMIT_RTTIME: real-time CPU time, microseconds or a time span
StandardInput string null yes Standard input: null, tty, data, file:PATH, socket or fd:NAME
StandardOutput string journal yes Standard output: journal (the unit log), inherit, null, file:PATH, append:PATH, truncate:PATH
StandardError string inherit yes Standard error: like StandardOutput=; inherit means the same as standard output
SyslogIdentifier string - yes Name prefixed to the unit's log lines; defaults to the executable name
StandardInputText string - later Text passed on standard input (StandardInput=data)
StandardInputData string - later Base64 data passed on standard input (StandardInput=data)
SyslogFacility string - logging Syslog facility for the journal
SyslogLevel string - logging Default syslog level of output lines
SyslogLevelPrefix bool - logging Whether <N> prefixes set the log level of a line
LogLevelMax string - logging Highest log level kept
LogExtraFields string - logging Extra journal fields
LogRateLimitIntervalSec sec - logging Journal rate limit window
LogRateLimitBurst string - logging Journal rate limit burst
LogNamespace string - logging Journal namespace
TTYPath string - later Terminal used by StandardInput=tty
TTYReset bool - later Reset the terminal before and after use
TTYVHangup bool - later Hang up the terminal before use
TTYVTDisallocate bool - later Deallocate the virtual console
TTYRows string - later Terminal rows
TTYColumns string - later Terminal columns
User string - user User to run processes as
Group string - user Group to run processes as
DynamicUser bool - user Allocate a transient user
SupplementaryGroups words - user Supplementary groups
PAMName string - user PAM service to open a session with
IOSchedulingClass string - yes I/O scheduling class: realtime, best-effort, idle, none (best-effort) or 0..3
IOSchedulingPriority string - yes I/O scheduling priority 0..7 (0 is the highest)
CPUSchedulingPolicy string - later CPU scheduling policy
CPUSchedulingPriority string - later CPU scheduling priority
CPUSchedulingResetOnFork bool - later Reset scheduling policy on fork
CPUAffinity words - yes CPUs processes may run on: numbers and ranges such as 0-1,3
NUMAPolicy string - later NUMA memory policy
NUMAMask string - later NUMA node mask
OOMScoreAdjust string - yes OOM killer adjustment (-1000..1000); lowering it needs privileges
TimerSlackNSec string - later Timer slack in nanoseconds
Personality string - later Execution domain (personality)
IgnoreSIGPIPE bool - later Ignore SIGPIPE in executed processes
CoredumpFilter string - later Core dump filter mask
KeyringMode string - later Kernel keyring setup
SecureBits string - user Secure bits of executed processes
Capabilities string - obsolete Replaced by AmbientCapabilities=
CapabilityBoundingSet string - user Capability bounding set
AmbientCapabilities string - user Ambient capabilities
NoNewPrivileges bool - sandbox Set PR_SET_NO_NEW_PRIVS for executed processes
SELinuxContext string - user SELinux context
AppArmorProfile string - user AppArmor profile
SmackProcessLabel string - user SMACK label
RootDirectory string - sandbox Root directory (chroot)
RootImage string - sandbox Root disk image
RootImageOptions string - sandbox Mount options for RootImage=
RootHash string - sandbox dm-verity root hash
RootHashSignature string - sandbox dm-verity root hash signature
RootVerity string - sandbox dm-verity data
MountImages string - sandbox Extra disk images to mount
ExtensionImages string - sandbox System extension images
ExtensionDirectories string - sandbox System extension directories
MountAPIVFS bool - sandbox Mount /proc, /sys, /dev in the namespace
ProtectProc string - sandbox Visibility of /proc
ProcSubset string - sandbox Subset of /proc to mount
BindPaths string - sandbox Bind mounts
BindReadOnlyPaths string - sandbox Read-only bind mounts
ReadWritePaths string - sandbox Writable paths
ReadOnlyPaths string - sandbox Read-only paths
InaccessiblePaths string - sandbox Hidden paths
ExecPaths string - sandbox Paths where execution is allowed
NoExecPaths string - sandbox Paths where execution is forbidden
ReadWriteDirectories string - obsolete Old name of ReadWritePaths=
ReadOnlyDirectories string - obsolete Old name of ReadOnlyPaths=
InaccessibleDirectories string - obsolete Old name of InaccessiblePaths=
TemporaryFileSystem string - sandbox tmpfs mounts
PrivateTmp bool - sandbox Private /tmp and /var/tmp
PrivateDevices bool - sandbox Private /dev
PrivateIPC bool - sandbox Private IPC namespace
PrivateNetwork bool - sandbox Private network namespace
PrivateUsers bool - sandbox Private user namespace
PrivateMounts bool - sandbox Private mount namespace
NetworkNamespacePath string - sandbox Join a network namespace
IPCNamespacePath string - sandbox Join an IPC namespace
ProtectSystem string - sandbox Read-only /usr, /boot, /etc
ProtectHome string - sandbox Hide or protect home directories
ProtectKernelTunables bool - sandbox Read-only /proc/sys and /sys
ProtectKernelModules bool - sandbox Deny kernel module loading
ProtectKernelLogs bool - sandbox Deny kernel log access
ProtectClock bool - sandbox Deny clock changes
ProtectControlGroups bool - sandbox Read-only cgroup file system
ProtectHostname bool - sandbox Deny hostname changes
MountFlags string - sandbox Mount propagation
RestrictAddressFamilies string - sandbox Allowed socket address families
RestrictFileSystems string - sandbox Allowed file system types
RestrictNamespaces string - sandbox Allowed namespace types
RestrictRealtime bool - sandbox Deny real-time scheduling
RestrictSUIDSGID bool - sandbox Deny creating SUID/SGID files
LockPersonality bool - sandbox Lock the execution domain
MemoryDenyWriteExecute bool - sandbox Deny writable and executable memory
RemoveIPC bool - sandbox Remove IPC objects on stop
SystemCallFilter string - sandbox System call allow or deny list (seccomp)
SystemCallErrorNumber string - sandbox Error returned by filtered system calls
SystemCallArchitectures string - sandbox Allowed system call architectures
SystemCallLog string - sandbox System calls to log
RuntimeDirectory words - later Directories created under $XDG_RUNTIME_DIR
RuntimeDirectoryMode mode - later Mode of RuntimeDirectory=
RuntimeDirectoryPreserve string - later Keep RuntimeDirectory= after stop
StateDirectory words - later Directories created under the state directory
StateDirectoryMode mode - later Mode of StateDirectory=
CacheDirectory words - later Directories created under $XDG_CACHE_HOME
CacheDirectoryMode mode - later Mode of CacheDirectory=
LogsDirectory words - later Directories created under the log directory
LogsDirectoryMode mode - later Mode of LogsDirectory=
ConfigurationDirectory words - later Directories created under $XDG_CONFIG_HOME
ConfigurationDirectoryMode mode - later Mode of ConfigurationDirectory=
TimeoutCleanSec sec - later Time limit of the clean operation
LoadCredential string - creds Credential loaded from a file
LoadCredentialEncrypted string - creds Encrypted credential loaded from a file
SetCredential string - creds Credential given inline
SetCredentialEncrypted string - creds Encrypted credential given inline
UtmpIdentifier string - system utmp/wtmp identifier
UtmpMode string - system utmp record type
ExecSearchPath string - later Search path for bare executable names
@kill
KillMode enum:control-group|process|mixed|none control-group yes Which processes are signalled on stop
KillSignal signal SIGTERM yes Signal sent first on stop
RestartKillSignal signal - yes Signal sent on restart; defaults to KillSignal=
SendSIGHUP bool no yes Send SIGHUP right after KillSignal=
SendSIGKILL bool yes yes Send FinalKillSignal= to processes left after TimeoutStopSec=
FinalKillSignal signal SIGKILL yes Signal sent to processes still alive after TimeoutStopSec=
WatchdogSignal signal - yes Signal sent when the watchdog expires
@cgroup
Slice string - cgroup Slice the unit is placed in
Delegate string - cgroup Delegate a cgroup subtree to the service
DisableControllers string - cgroup Controllers disabled for the subtree
CPUAccounting bool - yes CPU accounting; unitmgr always accounts CPU time
CPUWeight string - yes CPU weight (1..10000 or idle); needs the cgroup cpu controller
StartupCPUWeight string - cgroup CPU weight during start-up
CPUShares string - obsolete Old name of CPUWeight=
StartupCPUShares string - obsolete Old name of StartupCPUWeight=
CPUQuota string - yes CPU time quota in percent of one CPU; needs the cgroup cpu controller
CPUQuotaPeriodSec sec - yes CPU quota period (1ms..1s, default 100ms)
AllowedCPUs string - cgroup cpuset CPUs
StartupAllowedCPUs string - cgroup cpuset CPUs during start-up
AllowedMemoryNodes string - cgroup cpuset memory nodes
StartupAllowedMemoryNodes string - cgroup cpuset memory nodes during start-up
MemoryAccounting bool - yes Memory accounting; unitmgr always accounts memory
MemoryMin string - cgroup memory.min
MemoryLow string - cgroup memory.low
DefaultMemoryMin string - cgroup memory.min default of children
DefaultMemoryLow string - cgroup memory.low default of children
MemoryHigh string - yes memory.high throttling limit; needs the cgroup memory controller
MemoryMax string - yes memory.max; without the memory controller the manager kills the unit above it
MemorySwapMax string - yes memory.swap.max; needs the cgroup memory controller
MemoryLimit string - obsolete Old name of MemoryMax=
TasksAccounting bool - yes Tasks accounting; unitmgr always counts tasks
TasksMax string - yes pids.max; without the pids controller the manager kills the newest tasks above it
IOAccounting bool - yes I/O accounting; unitmgr always reads I/O bytes
IOWeight string - yes I/O weight (1..10000); needs the cgroup io controller
StartupIOWeight string - cgroup I/O weight during start-up
IODeviceWeight string - cgroup Per-device I/O weight
IOReadBandwidthMax string - cgroup Per-device read bandwidth limit
IOWriteBandwidthMax string - cgroup Per-device write bandwidth limit
IOReadIOPSMax string - cgroup Per-device read IOPS limit
IOWriteIOPSMax string - cgroup Per-device write IOPS limit
IODeviceLatencyTargetSec string - cgroup Per-device I/O latency target
BlockIOAccounting bool - obsolete Old name of IOAccounting=
BlockIOWeight string - obsolete Old name of IOWeight=
StartupBlockIOWeight string - obsolete Old name of StartupIOWeight=
BlockIODeviceWeight string - obsolete Old name of IODeviceWeight=
BlockIOReadBandwidth string - obsolete Old name of IOReadBandwidthMax=
BlockIOWriteBandwidth string - obsolete Old name of IOWriteBandwidthMax=
IPAccounting bool - cgroup IP traffic accounting
IPAddressAllow string - cgroup Allowed IP address ranges
IPAddressDeny string - cgroup Denied IP address ranges
IPIngressFilterPath string - cgroup BPF ingress filter
IPEgressFilterPath string - cgroup BPF egress filter
BPFProgram string - cgroup BPF program attached to the cgroup
SocketBindAllow string - cgroup Allowed socket bind addresses
SocketBindDeny string - cgroup Denied socket bind addresses
RestrictNetworkInterfaces string - cgroup Allowed network interfaces
DeviceAllow string - cgroup Device access list
DevicePolicy string - cgroup Device access policy
ManagedOOMSwap string - cgroup systemd-oomd swap policy
ManagedOOMMemoryPressure string - cgroup systemd-oomd pressure policy
ManagedOOMMemoryPressureLimit string - cgroup systemd-oomd pressure limit
ManagedOOMPreference string - cgroup systemd-oomd preference
NetClass string - obsolete Network class (removed)
"""

SECTIONS = """
[Unit]
Description string - yes Human-readable name of the unit, shown by status and list
Documentation words - yes URIs of documentation for the unit (http:, https:, file:, info:, man:)
Wants units - yes Units started along with this one; their failure does not matter
Requires units - yes Units started along with this one; if one fails to start, this unit fails too
Requisite units - yes Units that must already be active; they are not started
BindsTo units - yes Like Requires=, and this unit stops when one of them stops
BindTo units - yes Old spelling of BindsTo=
PartOf units - yes Units whose stop or restart also stops or restarts this one
Upholds units - yes Units restarted whenever they stop while this one is active
Conflicts units - yes Units stopped when this one starts, and the other way round
Before units - yes Units started after this one when both start
After units - yes Units that must finish starting before this one starts
OnFailure units - yes Units started when this one enters the failed state
OnSuccess units - yes Units started when this one finishes successfully
PropagatesReloadTo units - yes Units reloaded when this one is reloaded
ReloadPropagatedFrom units - yes Units whose reload also reloads this one
PropagateReloadTo units - obsolete Old spelling of PropagatesReloadTo=
PropagateReloadFrom units - obsolete Old spelling of ReloadPropagatedFrom=
PropagatesStopTo units - yes Units stopped when this one stops
StopPropagatedFrom units - yes Units whose stop also stops this one
JoinsNamespaceOf units - sandbox Units whose namespaces this one joins
RequiresMountsFor words - system Paths whose mount units are required
OnFailureJobMode string - deps Job mode for OnFailure= units
OnSuccessJobMode string - deps Job mode for OnSuccess= units
OnFailureIsolate string - obsolete Old form of OnFailureJobMode=isolate
IgnoreOnIsolate bool - later Keep this unit running on isolate
IgnoreOnSnapshot string - obsolete Snapshots were removed from systemd
StopWhenUnneeded bool - yes Stop the unit when no active unit wants it
RefuseManualStart bool - yes Refuse a start requested directly by the user
RefuseManualStop bool - yes Refuse a stop requested directly by the user
AllowIsolate bool - later Allow isolate to this unit
DefaultDependencies bool yes yes Add the implicit dependencies of the unit type
CollectMode string - later When a failed unit is unloaded
FailureAction enum:none|exit|exit-force none yes Action when the unit fails (none, exit, exit-force)
SuccessAction enum:none|exit|exit-force none yes Action when the unit finishes successfully (none, exit, exit-force)
FailureActionExitStatus int - yes Exit status of the manager for FailureAction=exit
SuccessActionExitStatus int - yes Exit status of the manager for SuccessAction=exit
JobTimeoutSec sec - later Time limit for a job of this unit
JobRunningTimeoutSec sec - later Time limit for a running job of this unit
JobTimeoutAction string - later Action when a job times out
JobTimeoutRebootArgument string - system Reboot argument for JobTimeoutAction=
StartLimitIntervalSec sec 10 yes Window of the start rate limit; 0 disables it
StartLimitInterval sec - yes Old spelling of StartLimitIntervalSec=
StartLimitBurst int 5 yes Starts allowed per StartLimitIntervalSec=
StartLimitAction string - later Action when the start limit is hit (none, exit, exit-force)
RebootArgument string - system Reboot argument for the reboot actions
SourcePath string - later File the unit was generated from
RequiresOverridable units - obsolete Removed in systemd 236; mapped to Requires= by systemd
RequisiteOverridable units - obsolete Removed in systemd 236; mapped to Requisite= by systemd
@conditions
[Install]
Alias words - yes Extra names linked to the unit by enable
WantedBy words - yes Units that get a Wants= on this one when it is enabled
RequiredBy words - yes Units that get a Requires= on this one when it is enabled
Also words - yes Units enabled and disabled together with this one
DefaultInstance string - yes Instance enabled when a template is enabled without one
[Service]
Type enum:simple|exec|forking|oneshot|dbus|notify|notify-reload|idle - yes How the manager decides the service has started
ExitType enum:main|cgroup main yes When the service counts as exited: main process gone, or all its processes
RemainAfterExit bool no yes Keep the unit active after its processes exit successfully
GuessMainPID bool yes yes Guess the main PID of a forking service without PIDFile=
PIDFile string - yes PID file of a forking service
BusName string - dbus D-Bus name that marks the service started (Type=dbus)
BusPolicy string - obsolete Removed kdbus setting
ExecCondition exec - yes Commands whose failure skips the start without failing the unit
ExecStartPre exec - yes Commands run before ExecStart=
ExecStart exec - yes The main command; several only with Type=oneshot
ExecStartPost exec - yes Commands run after the service has started
ExecReload exec - yes Commands run by reload
ExecStop exec - yes Commands run to stop the service, before the kill signal
ExecStopPost exec - yes Commands run after the service has stopped
RestartSec sec 0.1 yes Delay before an automatic restart
TimeoutStartSec timeout - yes Time limit for start-up; infinity for Type=oneshot; 0 means infinity
TimeoutStopSec timeout 90 yes Time limit for each stop command and for processes to exit after the kill signal
TimeoutAbortSec timeout - yes Time limit after the watchdog signal
TimeoutSec timeout - yes Sets both TimeoutStartSec= and TimeoutStopSec=
TimeoutStartFailureMode enum:terminate|abort|kill terminate yes What to do when the start times out
TimeoutStopFailureMode enum:terminate|abort|kill terminate yes What to do when the stop times out
RuntimeMaxSec sec infinity yes Maximum time the service may be active
RuntimeRandomizedExtraSec sec 0 later Random time added to RuntimeMaxSec=
WatchdogSec sec 0 yes Watchdog interval; the service must send WATCHDOG=1 within it
Restart enum:no|on-success|on-failure|on-abnormal|on-watchdog|on-abort|always no yes When the service is restarted automatically after it exits
RestartSteps int 0 yes Steps of the back-off from RestartSec= to RestartMaxDelaySec= (systemd 254)
RestartMaxDelaySec sec infinity yes Longest delay before an automatic restart (systemd 254)
ReloadSignal signal SIGHUP yes Signal that asks a Type=notify-reload service to reload (systemd 253)
SuccessExitStatus exitstatus - yes Extra exit codes and signals that count as a clean exit
RestartPreventExitStatus exitstatus - yes Exit codes and signals that never trigger an automatic restart
RestartForceExitStatus exitstatus - yes Exit codes and signals that always trigger an automatic restart
RootDirectoryStartOnly bool - sandbox Apply RootDirectory= only to ExecStart=
PermissionsStartOnly bool - obsolete Replaced by the + prefix of command lines
NonBlocking bool - yes Set O_NONBLOCK on passed sockets
NotifyAccess enum:none|main|exec|all - yes Which processes may send sd_notify messages
Sockets units - yes Socket units whose sockets are passed to the service
FileDescriptorStoreMax int 0 later Number of file descriptors the service may store
USBFunctionDescriptors string - system USB FunctionFS descriptors
USBFunctionStrings string - system USB FunctionFS strings
OOMPolicy enum:continue|stop|kill - cgroup What happens when the kernel OOM killer hits the service
FailureAction string - later Action when the service fails (old place of the [Unit] setting)
RebootArgument string - system Reboot argument
SysVStartPriority string - obsolete SysV init ordering
StartLimitInterval sec - yes Old place of [Unit] StartLimitIntervalSec=
StartLimitBurst int - yes Old place of [Unit] StartLimitBurst=
StartLimitAction string - later Old place of [Unit] StartLimitAction=
@exec
@kill
@cgroup
[Socket]
ListenStream strings - yes Stream socket address: /path, @abstract, PORT, ADDR:PORT
ListenDatagram strings - yes Datagram socket address
ListenSequentialPacket strings - yes Sequential-packet AF_UNIX socket path
ListenFIFO strings - yes FIFO path
ListenSpecial strings - sockets Special file to open
ListenNetlink strings - sockets Netlink family and group
ListenMessageQueue strings - sockets POSIX message queue name
ListenUSBFunction strings - sockets USB FunctionFS endpoint directory
SocketProtocol string - sockets IP protocol (udplite, sctp)
BindIPv6Only string - yes IPV6_V6ONLY policy
Backlog string - yes listen() backlog
BindToDevice string - sockets Network interface to bind to
SocketUser string - user Owner of the socket node
SocketGroup string - user Group of the socket node
SocketMode mode 0666 yes Mode of the socket or FIFO node
DirectoryMode mode 0755 yes Mode of created parent directories
Accept bool no yes Start one service instance per connection
Writable bool - sockets Open ListenSpecial= files for writing
FlushPending bool - sockets Flush pending data before starting the service
MaxConnections string - yes Concurrent connections limit for Accept=yes
MaxConnectionsPerSource string - sockets Concurrent connections per source address
KeepAlive bool - yes SO_KEEPALIVE
KeepAliveTimeSec sec - sockets TCP_KEEPIDLE
KeepAliveIntervalSec sec - sockets TCP_KEEPINTVL
KeepAliveProbes string - sockets TCP_KEEPCNT
NoDelay bool - yes TCP_NODELAY
Priority string - sockets SO_PRIORITY
DeferAcceptSec sec - sockets TCP_DEFER_ACCEPT
ReceiveBuffer string - yes SO_RCVBUF
SendBuffer string - yes SO_SNDBUF
IPTOS string - sockets IP_TOS
IPTTL string - sockets IP_TTL
Mark string - sockets SO_MARK
ReusePort bool - yes SO_REUSEPORT
SmackLabel string - user SMACK label of the socket
SmackLabelIPIn string - user SMACK label of incoming packets
SmackLabelIPOut string - user SMACK label of outgoing packets
SELinuxContextFromNet bool - user Take the SELinux context from the network
PipeSize string - sockets FIFO pipe size
MessageQueueMaxMessages string - sockets mq_maxmsg
MessageQueueMessageSize string - sockets mq_msgsize
FreeBind bool - yes IP_FREEBIND
Transparent bool - sockets IP_TRANSPARENT
Broadcast bool - yes SO_BROADCAST
PassCredentials bool - yes SO_PASSCRED
PassSecurity bool - sockets SO_PASSSEC
PassPacketInfo bool - sockets IP_PKTINFO
Timestamping string - sockets SO_TIMESTAMP
TCPCongestion string - sockets TCP_CONGESTION
ExecStartPre exec - sockets Commands run before the sockets are created
ExecStartPost exec - sockets Commands run after the sockets are created
ExecStopPre exec - sockets Commands run before the sockets are closed
ExecStopPost exec - sockets Commands run after the sockets are closed
TimeoutSec timeout 90 sockets Time limit for the socket's commands
Symlinks words - sockets Extra symlinks to the socket path
FileDescriptorName string - yes Name of the passed file descriptors
Service string - yes Service activated by the socket
RemoveOnStop bool no yes Remove the socket nodes when the socket stops
TriggerLimitIntervalSec sec - yes Window of the activation rate limit
TriggerLimitBurst int - yes Activations allowed per window
@exec
@kill
@cgroup
[Timer]
OnActiveSec seclist - timers Elapse this long after the timer is activated
OnBootSec seclist - timers Elapse this long after the machine booted
OnStartupSec seclist - timers Elapse this long after the manager started
OnUnitActiveSec seclist - timers Elapse this long after the unit last became active
OnUnitInactiveSec seclist - timers Elapse this long after the unit last became inactive
OnCalendar strings - timers Elapse at the calendar times given
OnClockChange bool no timers Elapse when the system clock jumps
OnTimezoneChange bool no timers Elapse when the time zone changes
AccuracySec sec 60 timers Allowed lateness of an elapse
RandomizedDelaySec sec 0 timers Random delay added to each elapse
FixedRandomDelay bool no timers Keep the random delay stable per unit
Unit string - timers Unit started when the timer elapses; defaults to the same name with .service
Persistent bool no timers Catch up on a calendar elapse missed while the manager was down
WakeSystem bool no system Wake the machine from suspend to elapse
RemainAfterElapse bool yes timers Stay active after the last elapse
[Path]
PathExists strings - paths Start the unit when this path exists
PathExistsGlob strings - paths Start the unit when this glob matches
PathChanged strings - paths Start the unit when this file is closed after writing
PathModified strings - paths Start the unit when this file is written
DirectoryNotEmpty strings - paths Start the unit when this directory has entries
Unit string - paths Unit started by the path unit
MakeDirectory bool no paths Create the watched directories
DirectoryMode mode 0755 paths Mode of created directories
TriggerLimitIntervalSec sec - paths Window of the activation rate limit
TriggerLimitBurst int - paths Activations allowed per window
[Slice]
@cgroup
"""

CONDITIONS = """
ACPower Machine is or is not on AC power
Architecture Machine architecture matches
CPUFeature CPU has the feature
CPUPressure CPU pressure is below the threshold
CPUs Number of CPUs matches the comparison
Capability The manager's bounding set has the capability
ControlGroupController The cgroup controller is available
Credential The manager received the credential
DirectoryNotEmpty The path is a non-empty directory
Environment The manager's environment has NAME or NAME=value
FileIsExecutable The path is an executable file
FileNotEmpty The path is a non-empty regular file
Firmware The firmware matches
FirstBoot This is the first boot
Group The manager's user is in the group
Host Host name or machine ID matches
IOPressure I/O pressure is below the threshold
KernelCommandLine The kernel command line has the word or assignment
KernelVersion The kernel release matches the comparison
Memory Physical memory matches the comparison
MemoryPressure Memory pressure is below the threshold
NeedsUpdate /etc or /var is older than the directory given
OSRelease An os-release field matches
PathExists The path exists
PathExistsGlob A file matches the glob
PathIsDirectory The path is a directory
PathIsEncrypted The path is on an encrypted device
PathIsMountPoint The path is a mount point
PathIsReadWrite The path is on a writable file system
PathIsSymbolicLink The path is a symbolic link
Security A security technology is enabled
User The manager runs as the user (name, UID or @system)
Virtualization The machine runs in the virtualization given
"""
