//! Checks every peer on every workload once and prints the outcome (no timing).
fn main() {
    for w in stompkit_benches::workloads::all() {
        for peer in stompkit_peer_benches::peers() {
            let result = peer.check(&w.bytes, w.frames);
            println!("{:6} {:15} {:?}", w.name, peer.name, result);
        }
    }
}
