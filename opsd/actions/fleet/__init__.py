"""The fleet (docs/fleet.md): a cluster host publishes its cluster to etcd; a drill host claims and drills the
cluster whose last passed drill is oldest; ``opsd fleet`` reads it all back."""
