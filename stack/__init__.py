"""The local stack: finds or builds livekit-server and Ollama, provides the offline models, and
starts the servers on loopback. Used by `./avatar`, the test fixtures and the benchmarks."""
