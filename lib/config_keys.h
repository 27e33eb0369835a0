/* Every configuration key skyprof knows: X-macro table.
 *
 *   CFG(key, type, default, rover_env_alias, help)
 *
 * The environment name is always SKYPROF_<KEY> (dots and brackets become
 * underscores, upper case); rover_env_alias is the reference agent's name
 * for the same setting (SkyWalking Rover's configuration documentation,
 * docs/en/setup/configuration/) or NULL when it has none or the meaning
 * differs. Types: STR, BOOL, INT, DURATION, SIZE, LEVEL. */
CFG("log.level", LEVEL, "info", "ROVER_LOGGER_LEVEL",
    "error, warn, info or debug")
CFG("runtime_dir", STR, "/run/skyprof", NULL,
    "directory for ipc:// endpoints; created mode 0700")
CFG("node_name", STR, "", NULL,
    "name of this node on collector messages (pids are per node); empty = the host name. In Kubernetes set SKYPROF_NODE_NAME from spec.nodeName")
CFG("bus.in", STR, "", NULL,
    "broker endpoint publishers connect to (default ipc://RUNTIME_DIR/bus-in); a comma-separated list connects to several brokers")
CFG("bus.out", STR, "", NULL,
    "broker endpoint subscribers connect to (default ipc://RUNTIME_DIR/bus-out); a comma-separated list connects to several brokers")
CFG("bus.hwm", INT, "2000", NULL,
    "ZeroMQ high-water mark in messages for every socket")
CFG("bus.curve_secret_key_file", STR, "", NULL,
    "file with this process's ZeroMQ CURVE secret key (40-character Z85); set = tcp:// bus endpoints use CURVE (encrypted, both ends authenticated), brokers refuse clients without an authorized key; ipc:// stays plain; empty = off")
CFG("bus.curve_server_key_file", STR, "", NULL,
    "file with the brokers' CURVE public key (Z85); empty = the public key of bus.curve_secret_key_file (one key pair shared by every process)")
CFG("bus.curve_authorized_keys_file", STR, "", NULL,
    "broker: file of client CURVE public keys admitted (Z85, one per line, # comments); empty = only the public key of bus.curve_secret_key_file")
CFG("bus.stats_interval", DURATION, "2s", NULL,
    "how often each stage publishes its counters on the bus")

CFG("core.cluster_name", STR, "", "ROVER_CORE_CLUSTER_NAME",
    "cluster name added to process entities")
CFG("core.backend.addr", STR, "", "ROVER_CORE_BACKEND_ADDR",
    "SkyWalking OAP gRPC address host:port; empty = local mode")
CFG("core.backend.enable_TLS", BOOL, "false", "ROVER_CORE_BACKEND_ENABLE_TLS",
    "use TLS to the OAP")
CFG("core.backend.ca_pem_path", STR, "", "ROVER_CORE_BACKEND_TLS_CA_PEM_PATH",
    "CA bundle for the OAP certificate (default: system roots)")
CFG("core.backend.client_pem_path", STR, "", "ROVER_CORE_BACKEND_TLS_CLIENT_PEM_PATH",
    "client certificate for mutual TLS")
CFG("core.backend.client_key_path", STR, "", "ROVER_CORE_BACKEND_TLS_CLIENT_KEY_PATH",
    "client key for mutual TLS")
CFG("core.backend.insecure_skip_verify", BOOL, "false", "ROVER_CORE_BACKEND_TLS_INSECURE_SKIP_VERIFY",
    "do not verify the OAP certificate")
CFG("core.backend.authentication", STR, "", "ROVER_CORE_BACKEND_AUTHENTICATION",
    "token sent as the 'authentication' metadata on every call")
CFG("core.backend.upstream_timeout", DURATION, "5s", "ROVER_CORE_BACKEND_UPSTREAM_TIMEOUT",
    "deadline of each gRPC call")
CFG("core.backend.buffer_size", SIZE, "4MB", NULL,
    "profiling data kept while the OAP is unreachable; oldest dropped first")

CFG("process_discovery.heartbeat_period", DURATION, "20s", "ROVER_PROCESS_DISCOVERY_HEARTBEAT_PERIOD",
    "keepAlive period of reported processes")
CFG("process_discovery.properties_report_period", INT, "10", "ROVER_PROCESS_DISCOVERY_PROPERTIES_REPORT_PERIOD",
    "re-report all processes every N heartbeats")

CFG("process_discovery.kubernetes.active", BOOL, "false", "ROVER_PROCESS_DISCOVERY_KUBERNETES_ACTIVE",
    "discover the processes of this node's pods from the Kubernetes API server (uplink; docs/kubernetes.md)")
CFG("process_discovery.kubernetes.node_name", STR, "", "ROVER_PROCESS_DISCOVERY_KUBERNETES_NODE_NAME",
    "this node's name in Kubernetes (from spec.nodeName); empty = node_name")
CFG("process_discovery.kubernetes.namespaces", STR, "", "ROVER_PROCESS_DISCOVERY_KUBERNETES_NAMESPACES",
    "comma-separated namespaces whose pods are discovered; empty = all")
CFG("process_discovery.kubernetes.api_server", STR, "", NULL,
    "API server URL (https://host:port); empty = in-cluster, from KUBERNETES_SERVICE_HOST/PORT")
CFG("process_discovery.kubernetes.token_file", STR, "", NULL,
    "bearer token file; empty = the service account's (/var/run/secrets/kubernetes.io/serviceaccount/token)")
CFG("process_discovery.kubernetes.ca_file", STR, "", NULL,
    "CA bundle of the API server; empty = the service account's ca.crt")

CFG("profiling.active", BOOL, "true", "ROVER_PROFILING_ACTIVE",
    "profile processes at all")
CFG("profiling.check_interval", DURATION, "10s", "ROVER_PROFILING_CHECK_INTERVAL",
    "how often the OAP is asked for new tasks")
CFG("profiling.flush_interval", DURATION, "5s", "ROVER_PROFILING_FLUSH_INTERVAL",
    "aggregation window and report interval")
CFG("profiling.task.on_cpu.dump_period", DURATION, "9ms", "ROVER_PROFILING_TASK_ON_CPU_DUMP_PERIOD",
    "on-CPU sampling period of profiling tasks")
CFG("profiling.task.network.report_interval", DURATION, "2s", "ROVER_PROFILING_TASK_NETWORK_TOPOLOGY_REPORT_INTERVAL",
    "how often the aggregator's network room publishes net.report (meters, sampled requests, per-URI HTTP figures) and the uplink sends them")
CFG("profiling.task.network.meter_prefix", STR, "rover_net_p", "ROVER_PROFILING_TASK_NETWORK_TOPOLOGY_METER_PREFIX",
    "prefix of the network profiling meter names sent to the OAP (the uplink adds it)")
CFG("profiling.task.network.protocol_analyze.per_cpu_buffer", SIZE, "400KB", "ROVER_PROFILING_TASK_NETWORK_PROTOCOL_ANALYZE_PER_CPU_BUFFER",
    "socket data buffer per CPU in the collector (the reference agent's meaning; the collector sizes its ring buffer from it)")
CFG("profiling.task.network.protocol_analyze.parallels", INT, "2", "ROVER_PROFILING_TASK_NETWORK_PROTOCOL_ANALYZE_PARALLELS",
    "accepted for compatibility: skyprof's protocol analysis scales with aggregator replicas (aggregator.sharding), one thread each")
CFG("profiling.task.network.protocol_analyze.queue_size", INT, "5000", "ROVER_PROFILING_TASK_NETWORK_PROTOCOL_ANALYZE_QUEUE_SIZE",
    "accepted for compatibility: the bus's high-water mark (bus.hwm) bounds the queue of net.events batches")
CFG("profiling.task.network.protocol_analyze.sampling.http.default_request_encoding", STR, "UTF-8", "ROVER_PROFILING_TASK_NETWORK_PROTOCOL_ANALYZE_SAMPLING_HTTP_DEFAULT_REQUEST_ENCODING",
    "body encoding of sampled requests without a charset (the uplink's, when it writes the HTTP Request Sampling event)")
CFG("profiling.task.network.protocol_analyze.sampling.http.default_response_encoding", STR, "UTF-8", "ROVER_PROFILING_TASK_NETWORK_PROTOCOL_ANALYZE_SAMPLING_HTTP_DEFAULT_RESPONSE_ENCODING",
    "body encoding of sampled responses without a charset (the uplink's)")
CFG("profiling.continuous.meter_prefix", STR, "rover_con_p", "ROVER_PROFILING_CONTINUOUS_METER_PREFIX",
    "prefix of continuous-profiling meters")
CFG("profiling.continuous.fetch_interval", DURATION, "1s", "ROVER_PROFILING_CONTINUOUS_FETCH_INTERVAL",
    "how often monitors read process and system metrics")
CFG("profiling.continuous.check_interval", DURATION, "5s", "ROVER_PROFILING_CONTINUOUS_CHECK_INTERVAL",
    "how often thresholds are checked")
CFG("profiling.continuous.trigger.execute_duration", DURATION, "10m", "ROVER_PROFILING_CONTINUOUS_TRIGGER_EXECUTE_DURATION",
    "duration of a triggered profiling task")
CFG("profiling.continuous.trigger.silence_duration", DURATION, "20m", "ROVER_PROFILING_CONTINUOUS_TRIGGER_SILENCE_DURATION",
    "minimal time between two triggers of the same process and target")

CFG("collector.host_wide", BOOL, "true", NULL,
    "sample every process on the host (the Total view) besides task targets")
CFG("collector.host_period", DURATION, "20ms", NULL,
    "sampling period of the host-wide view (rounded to a whole number of ticks, or of dump_period with perf_event)")
CFG("collector.sampler", STR, "auto", NULL,
    "on-CPU trigger: auto (scheduler tick where the kernel allows, else perf_event), tick, or perf_event (a CPU-clock interrupt of our own)")
CFG("collector.offcpu_sample_every", INT, "128", NULL,
    "off-CPU: once a thread had 16 short recorded blocking periods in a row, stacks for 1 in N of its periods, each standing for N (1 = every period)")
CFG("collector.offcpu_long_period", DURATION, "1ms", NULL,
    "off-CPU: a thread whose recorded period, or time from getting a CPU to its next wakeup, is at least this long has its next periods recorded whole")
CFG("collector.net_capture_bytes", SIZE, "1024", NULL,
    "network capture: payload prefix kept per read/write of a traced socket (0..4096 bytes; the rest is counted, not kept)")
CFG("collector.net_ringbuf_size", SIZE, "8MB", NULL,
    "network capture: BPF ring buffer size for socket events (power of two); loaded only while a NETWORK task runs")
CFG("collector.unwinder", STR, "auto", NULL,
    "user stacks: auto (.eh_frame tables walked in the kernel where the walker loads, else frame pointers), dwarf (fail if the walker does not load), or fp (frame pointers only)")
CFG("collector.unwind_rows", INT, "4194304", NULL,
    "unwind table rows the kernel holds for all objects (8 bytes each); the least recently used tables are evicted when full")
CFG("collector.unwind_tables", INT, "4096", NULL,
    "objects whose unwind tables the kernel holds at once")
CFG("collector.unwind_procs", INT, "4096", NULL,
    "processes with a mapping table in the kernel (about 4 KiB each); the others are walked with frame pointers")
CFG("collector.unwind_max_frames", INT, "127", NULL,
    "deepest user stack walked (1..127); deeper stacks are cut and marked truncated")
CFG("collector.ringbuf_size", SIZE, "2MB", NULL,
    "BPF ring buffer size for samples (power of two)")
CFG("collector.drain_interval", DURATION, "250ms", NULL,
    "how often the sample ring buffer is drained (no per-sample wakeups)")
CFG("collector.publish_interval", DURATION, "1s", NULL,
    "how often drained stacks are published (sooner when a batch is full); 0 = every drain")
CFG("collector.proc_grace", DURATION, "30s", NULL,
    "how long the mappings of an exited process are kept for late samples")
CFG("collector.proc_republish_interval", DURATION, "10s", NULL,
    "how often every live process is published again on proc.events (the uplink's process table is built from them); 0 = never")
CFG("collector.max_batch_samples", INT, "4096", NULL,
    "distinct stacks per published batch")
CFG("collector.http_addr", STR, "", NULL,
    "host:port for /metrics and /healthz of this stage; empty = off")

CFG("symbolizer.cache_size", SIZE, "64MB", NULL,
    "memory for cached symbol tables (LRU by object); the frame memo adds up to a quarter more")
CFG("symbolizer.debug_dirs", STR, "/usr/lib/debug", NULL,
    "colon-separated roots searched for separate debug files")
CFG("symbolizer.perfmap_max_size", SIZE, "32MB", NULL,
    "larger JIT perf maps (/tmp/perf-PID.map) are refused unread and counted (perfmaps_refused); their frames stay unresolved")
CFG("symbolizer.debuglink_crc_max_size", SIZE, "256MB", NULL,
    "a .gnu_debuglink candidate without a matching build-id is CRC-checked only up to this size; larger ones are skipped and counted (debug_crc_skipped)")
CFG("symbolizer.sharding", BOOL, "false", NULL,
    "share pid buckets with other symbolizer replicas (ctl.hello); off = take all")
CFG("symbolizer.http_addr", STR, "", NULL,
    "host:port for /metrics and /healthz of this stage; empty = off")

CFG("aggregator.http_addr", STR, "127.0.0.1:8080", NULL,
    "host:port of the HTTP API and flame-graph pages")
CFG("aggregator.history", DURATION, "1h", NULL,
    "how long flush windows are kept in memory")
CFG("aggregator.store_path", STR, "/var/lib/skyprof/history.db", NULL,
    "SQLite file keeping recent windows across restarts; empty = memory only")
CFG("aggregator.store_retention", DURATION, "24h", NULL,
    "how long windows are kept in the store")
CFG("aggregator.max_nodes", INT, "200000", NULL,
    "most nodes of one flame tree; deeper paths are folded")
CFG("aggregator.sharding", BOOL, "false", NULL,
    "share pid buckets with other aggregator replicas (ctl.hello); queries fan out to them; off = take all")
CFG("aggregator.advertise_addr", STR, "", NULL,
    "host:port peers reach this replica's HTTP API at (default: http_addr, 0.0.0.0 replaced by the address of the host name)")
CFG("aggregator.allowed_hosts", STR, "", NULL,
    "comma-separated host names the API answers to besides IP literals, localhost and the hosts of http_addr and advertise_addr (Host header; DNS rebinding defence); * = any")
CFG("aggregator.auth_token", STR, "", NULL,
    "bearer token every API request but / and /healthz must carry (Authorization: Bearer, or the page's cookie); replicas send it to each other; 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -; empty = none")
CFG("aggregator.net_max_connections", INT, "16384", NULL,
    "network room: connections tracked at once (about 13 KiB each while HTTP is analysed); beyond it the least recently used is closed and counted (net_conn_evictions)")
CFG("aggregator.net_max_endpoints", INT, "4096", NULL,
    "network room: (process, URI) rows kept for the monitors and the local view; beyond it new URIs are counted (net_endpoints_dropped)")
CFG("aggregator.fanout_timeout", DURATION, "2s", NULL,
    "how long a query waits for each peer replica's part before answering partial")

CFG("policy.http_addr", STR, "", NULL,
    "host:port for /metrics and /healthz of this stage; empty = off")
CFG("policy.continuous_policies", STR, "", NULL,
    "local continuous-profiling policies, ServiceWithPolicyJSON (the OAP's ContinuousProfilingPolicyQuery shape); "
    "a process's service is its name unless the uplink maps it")
CFG("policy.republish_interval", DURATION, "2s", NULL,
    "how often the full desired task set is republished")

CFG("uplink.agent_id", STR, "", NULL,
    "ebpfAgentID / roverInstanceId reported to the OAP (default: hostname-pid)")
CFG("uplink.http_addr", STR, "", NULL,
    "host:port for /metrics and /healthz of this stage; empty = off")

CFG("broker.http_addr", STR, "", NULL,
    "host:port for /metrics and /healthz of the broker; empty = off")
