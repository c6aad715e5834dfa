"""The lookup hook: the business's own endpoint, asked before register-call, that may
personalize the call (ElevenLabs' client-data shape) or route it (`agent_id`, `action`)."""
