"""ElevenLabs clients: register-call (on the caller's time), native outbound calls,
agents, conversation_initiation_client_data, error bodies, and webhook signatures."""
