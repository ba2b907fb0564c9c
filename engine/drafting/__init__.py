"""The drafting loop: the LangGraph state machine (graph), a scene drafted through chat or raw
continuation, the repetition guard, the running summary, the review and story bible, the outline."""
