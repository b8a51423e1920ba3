"""The fleet's decisions, pure: where things live in etcd, which cluster a drill host drills next, which are
overdue, and a month of the fleet for its report (docs/fleet.md)."""
