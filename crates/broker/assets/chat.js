// stompkit demo chat client (placeholder)
