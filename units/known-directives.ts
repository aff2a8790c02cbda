// systemd directives (v252, systemd.directives(7)) that Keel knows by name but does not implement:
// they draw "unsupported by keel, ignoring" instead of "Unknown key", so real units load with warnings.

const words = (s: string) => s.trim().split(/\s+/);

const UNIT = words(`SourcePath Upholds PropagatesReloadTo ReloadPropagatedFrom PropagatesStopTo StopPropagatedFrom
  JoinsNamespaceOf OnFailureJobMode OnSuccess OnSuccessJobMode IgnoreOnIsolate StopWhenUnneeded RefuseManualStart
  RefuseManualStop AllowIsolate CollectMode FailureAction SuccessAction FailureActionExitStatus SuccessActionExitStatus
  JobTimeoutSec JobRunningTimeoutSec JobTimeoutAction JobTimeoutRebootArgument StartLimitAction RebootArgument
  OnFailureIsolate`);

/** Execution environment settings (systemd.exec(5)) other than the few Keel implements for services. */
const EXEC = words(`ExecSearchPath RootDirectory RootImage RootImageOptions RootHash RootHashSignature RootVerity
  MountAPIVFS ProtectProc ProcSubset BindPaths BindReadOnlyPaths MountImages ExtensionImages ExtensionDirectories
  SupplementaryGroups DynamicUser PAMName CapabilityBoundingSet AmbientCapabilities NoNewPrivileges SecureBits
  SELinuxContext AppArmorProfile SmackProcessLabel LimitCPU LimitFSIZE LimitDATA LimitSTACK LimitRSS LimitAS
  LimitMEMLOCK LimitLOCKS LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO LimitRTTIME OOMScoreAdjust
  CoredumpFilter TimerSlackNSec Personality IgnoreSIGPIPE CPUSchedulingPolicy CPUSchedulingPriority
  CPUSchedulingResetOnFork CPUAffinity NUMAPolicy NUMAMask IOSchedulingClass IOSchedulingPriority ProtectSystem
  ProtectHome RuntimeDirectory StateDirectory CacheDirectory LogsDirectory ConfigurationDirectory
  RuntimeDirectoryMode StateDirectoryMode CacheDirectoryMode LogsDirectoryMode ConfigurationDirectoryMode
  RuntimeDirectoryPreserve TimeoutCleanSec ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths
  TemporaryFileSystem PrivateTmp PrivateDevices PrivateNetwork NetworkNamespacePath PrivateIPC IPCNamespacePath
  PrivateUsers ProtectHostname ProtectClock ProtectKernelTunables ProtectKernelModules ProtectKernelLogs
  ProtectControlGroups RestrictAddressFamilies RestrictFileSystems RestrictNamespaces LockPersonality
  MemoryDenyWriteExecute RestrictRealtime RestrictSUIDSGID RemoveIPC PrivateMounts MountFlags SystemCallFilter
  SystemCallErrorNumber SystemCallArchitectures SystemCallLog UnsetEnvironment PassEnvironment StandardInputText
  StandardInputData LogLevelMax LogExtraFields LogRateLimitIntervalSec LogRateLimitBurst LogFilterPatterns
  LogNamespace SyslogIdentifier SyslogFacility SyslogLevel SyslogLevelPrefix TTYReset TTYVHangup TTYRows TTYColumns
  TTYVTDisallocate LoadCredential LoadCredentialEncrypted SetCredential SetCredentialEncrypted UtmpIdentifier
  UtmpMode KeyringMode ReadOnlyDirectories ReadWriteDirectories InaccessibleDirectories PrivateNetwork
  CPUSchedulingResetOnFork`);

/** Kill settings (systemd.kill(5)) Keel does not implement. */
const KILL = words('RestartKillSignal SendSIGHUP FinalKillSignal WatchdogSignal');

/** Resource control settings (systemd.resource-control(5)); [Service] handles some first (interpret-resources.ts). */
const CGROUP = words(`Slice Delegate CPUAccounting CPUWeight StartupCPUWeight CPUQuotaPeriodSec AllowedCPUs
  StartupAllowedCPUs AllowedMemoryNodes StartupAllowedMemoryNodes MemoryAccounting MemoryMin MemoryLow MemoryHigh
  MemorySwapMax MemoryZSwapMax TasksAccounting IOAccounting IOWeight StartupIOWeight IODeviceWeight
  IOReadBandwidthMax IOWriteBandwidthMax IOReadIOPSMax IOWriteIOPSMax IODeviceLatencyTargetSec IPAccounting
  IPAddressAllow IPAddressDeny IPIngressFilterPath IPEgressFilterPath BPFProgram SocketBindAllow SocketBindDeny
  RestrictNetworkInterfaces DeviceAllow DevicePolicy ManagedOOMSwap ManagedOOMMemoryPressure
  ManagedOOMMemoryPressureLimit ManagedOOMPreference DisableControllers CPUShares StartupCPUShares MemoryLimit
  BlockIOAccounting BlockIOWeight StartupBlockIOWeight BlockIODeviceWeight BlockIOReadBandwidth
  BlockIOWriteBandwidth`);

/** What Keel implements for [Service] only: in other sections these are known but unsupported. */
const SERVICE_EXEC_SUPPORTED = words(`User Group WorkingDirectory UMask Nice Environment EnvironmentFile LimitNOFILE
  LimitNPROC LimitCORE StandardInput StandardOutput StandardError TTYPath KillMode KillSignal SendSIGKILL MemoryMax
  CPUQuota TasksMax`);

const SERVICE = words(`ExitType GuessMainPID RuntimeMaxSec RuntimeRandomizedExtraSec WatchdogSec TimeoutAbortSec
  TimeoutStartFailureMode TimeoutStopFailureMode RestartPreventExitStatus RestartForceExitStatus
  RootDirectoryStartOnly NonBlocking NotifyAccess Sockets FileDescriptorStoreMax FileDescriptorStorePreserve
  USBFunctionDescriptors USBFunctionStrings OOMPolicy BusName OpenFile ReloadSignal PermissionsStartOnly
  FailureAction SuccessAction`);

const TIMER = words('OnClockChange OnTimezoneChange WakeSystem RemainAfterElapse FixedRandomDelay');

/** Socket listeners other than ListenStream/ListenDatagram (they still count as a Listen setting). */
export const OTHER_LISTEN = words(
  'ListenSequentialPacket ListenFIFO ListenSpecial ListenNetlink ListenMessageQueue ListenUSBFunction',
);

const SOCKET = words(`SocketProtocol BindIPv6Only Backlog BindToDevice SocketUser SocketGroup DirectoryMode
  MaxConnections MaxConnectionsPerSource KeepAlive KeepAliveTimeSec KeepAliveIntervalSec KeepAliveProbes NoDelay
  Priority DeferAcceptSec ReceiveBuffer SendBuffer IPTOS IPTTL Mark ReusePort SmackLabel SmackLabelIPIn
  SmackLabelIPOut SELinuxContextFromNet PipeSize MessageQueueMaxMessages MessageQueueMessageSize FreeBind
  Transparent Broadcast PassCredentials PassSecurity PassPacketInfo Timestamping TCPCongestion ExecStartPre
  ExecStartPost ExecStopPre ExecStopPost TimeoutSec Symlinks FileDescriptorName RemoveOnStop Writable FlushPending
  TriggerLimitIntervalSec TriggerLimitBurst`);

const MOUNT = words('SloppyOptions LazyUnmount ReadWriteOnly ForceUnmount DirectoryMode TimeoutSec');
const AUTOMOUNT = words('Where ExtraOptions DirectoryMode TimeoutIdleSec');
const PATH = words('PathExistsGlob PathModified MakeDirectory DirectoryMode TriggerLimitIntervalSec TriggerLimitBurst');
const SCOPE = words('RuntimeMaxSec RuntimeRandomizedExtraSec OOMPolicy TimeoutStopSec');

const TABLE: Record<string, Set<string>> = {
  Unit: new Set(UNIT),
  Service: new Set([...EXEC, ...KILL, ...CGROUP, ...SERVICE]),
  Timer: new Set(TIMER),
  Socket: new Set([...EXEC, ...KILL, ...CGROUP, ...SERVICE_EXEC_SUPPORTED, ...OTHER_LISTEN, ...SOCKET]),
  Mount: new Set([...EXEC, ...KILL, ...CGROUP, ...SERVICE_EXEC_SUPPORTED, ...MOUNT]),
  Swap: new Set([...EXEC, ...KILL, ...CGROUP, ...SERVICE_EXEC_SUPPORTED, 'What', 'Priority', 'Options', 'TimeoutSec']),
  Automount: new Set(AUTOMOUNT),
  Path: new Set(PATH),
  Slice: new Set([...CGROUP, 'CPUQuota', 'MemoryMax', 'TasksMax']),
  Scope: new Set([
    ...CGROUP,
    ...KILL,
    'CPUQuota',
    'MemoryMax',
    'TasksMax',
    'KillMode',
    'KillSignal',
    'SendSIGKILL',
    ...SCOPE,
  ]),
  Install: new Set(),
};

/** Whether `key` in `section` is a systemd directive that Keel ignores with an "unsupported" warning. */
export function isKnownUnsupported(section: string, key: string): boolean {
  return TABLE[section]?.has(key) ?? false;
}

/** The type-specific section of each unit type (`[Service]` for .service); targets have none. */
export const TYPE_SECTION: Record<string, string | null> = {
  service: 'Service',
  socket: 'Socket',
  mount: 'Mount',
  automount: 'Automount',
  swap: 'Swap',
  timer: 'Timer',
  path: 'Path',
  slice: 'Slice',
  scope: 'Scope',
  target: null,
  device: null,
  container: 'Container',
};
