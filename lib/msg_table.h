/* Every bus message, once: X-macro table (as lib/config_keys.h is for
 * configuration keys).
 *
 *   MSG(ID, topic, shape, type, codec, payload, publishers, subscribers)
 *
 * ID       MSG_<ID> in msg_id_t
 * topic    the topic, or its prefix for the shapes below (lib/wire.h)
 * shape    EXACT: the topic itself;
 *          BUCKET: prefix + the pid's bucket, two digits (wire_pid_bucket);
 *          SUFFIX: prefix + a name (a stage, a role)
 * type     the decoded C structure (lib/wire.h); its first member is the
 *          wire_header_t
 * codec    wire_encode_<codec> / wire_decode_<codec> in lib/wire.c, the
 *          bounded codec (several messages may share one)
 * payload, publishers, subscribers: for people (docs/wire.md is generated
 *          from them by mk/gen-wire-doc.py)
 *
 * Adding a message: a row here, its structure and codec in lib/wire.*, a
 * bus_send where it is published and a bus_on where it is received. */
MSG(RAW_STACKS, TOPIC_RAW_STACKS, BUCKET, wire_raw_batch_t, raw_batch,
    "raw stack batch", "collector", "symbolizer (by bucket)")
MSG(SYM_STACKS, TOPIC_SYM_STACKS, BUCKET, wire_sym_batch_t, sym_batch,
    "symbolized stack batch", "symbolizer", "aggregator (by bucket)")
MSG(PROC_EVENTS, TOPIC_PROC_EVENTS, EXACT, wire_proc_events_t, proc_events,
    "process events", "collector", "aggregator, policy, uplink")
MSG(NET_EVENTS, TOPIC_NET_EVENTS, BUCKET, wire_net_batch_t, net_batch,
    "network events (socket open/close/data of NETWORK tasks' processes)",
    "collector", "aggregator's network room (by bucket)")
MSG(CTL_TASKS, TOPIC_CTL_TASKS, EXACT, wire_task_set_t, task_set,
    "task set (desired state)", "policy",
    "collector, aggregator, uplink (also to notice a restarted policy "
    "engine and resend its policies)")
MSG(TASK_REQUEST, TOPIC_TASK_REQUEST, EXACT, wire_task_set_t, task_set,
    "task set (requests)", "uplink, aggregator (HTTP API)", "policy")
MSG(AGG_PROFILE, TOPIC_AGG_PROFILE, EXACT, wire_profile_batch_t,
    profile_batch, "profile batch", "aggregator", "uplink")
MSG(STATS, TOPIC_STATS, SUFFIX, wire_stats_t, stats, "stats",
    "every stage (name: the stage)", "aggregator")
MSG(HELLO, TOPIC_HELLO, SUFFIX, wire_hello_t, hello, "hello",
    "replicas (name: their role)", "replicas of the role")
MSG(AGG_PEER, TOPIC_AGG_PEER, EXACT, wire_agg_peer_t, agg_peer, "agg peer",
    "aggregator replicas (`aggregator.sharding`)", "aggregator replicas")
MSG(AGG_CLAIM, TOPIC_AGG_CLAIM, EXACT, wire_agg_release_t, agg_release,
    "agg release (no marks)", "aggregator replicas", "aggregator replicas")
MSG(AGG_RELEASE, TOPIC_AGG_RELEASE, EXACT, wire_agg_release_t, agg_release,
    "agg release", "aggregator replicas", "aggregator replicas")
MSG(AGG_IDLE, TOPIC_AGG_IDLE, EXACT, wire_agg_idle_t, agg_idle,
    "agg idle (the answer to a claim of a bucket not counted)",
    "aggregator replicas", "aggregator replicas")
MSG(PROC_IDS, TOPIC_PROC_IDS, EXACT, wire_proc_ids_t, proc_ids,
    "process entities", "uplink", "policy")
MSG(K8S_CONTAINERS, TOPIC_K8S_CONTAINERS, EXACT, wire_k8s_containers_t,
    k8s_containers, "container id → pod (Kubernetes discovery)", "uplink",
    "aggregator")
MSG(POLICY_UPDATE, TOPIC_POLICY_UPDATE, EXACT, wire_policy_update_t,
    policy_update, "policy update", "uplink", "policy")
MSG(TRIGGER, TOPIC_TRIGGER, EXACT, wire_trigger_t, trigger, "trigger",
    "policy", "uplink")
MSG(METERS, TOPIC_METERS, EXACT, wire_meters_t, meters, "meters", "policy",
    "uplink")
MSG(NET_REPORT, TOPIC_NET_REPORT, EXACT, wire_net_report_t, net_report,
    "network meters, sampled requests, per-URI HTTP figures",
    "aggregator (network room)", "uplink, policy")
