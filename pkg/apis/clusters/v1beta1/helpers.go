package v1beta1

// HubPushes says whether clusternet-hub applies applications to this cluster
// (through its tunnel) or leaves that to its agent. Upstream Clusternet's rule: the hub
// pushes in Push and Dual mode, but never to a cluster whose agent turned
// AppPusher off: such a cluster works as in Pull mode, and its agent applies.
func HubPushes(syncMode ClusterSyncMode, appPusher bool) bool {
	return appPusher && (syncMode == PushSyncMode || syncMode == DualSyncMode)
}

// HubPushes says whether the hub applies applications to mc (see the function
// of the same name).
func (mc *ManagedCluster) HubPushes() bool {
	return HubPushes(mc.Spec.SyncMode, mc.Status.AppPusher)
}
