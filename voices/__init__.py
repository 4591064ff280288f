"""Cloned voices and voice training, apart from any HTTP server: upload decoding and checks,
transcription, the voice store on disk, dataset preparation and GPT-SoVITS training jobs (run as
subprocesses). The token server routes to it (token_server/voices_api.py); it imports no entry
point."""
