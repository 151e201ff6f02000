"""The tracking API's documented limits, which the traffic model respects and the bad-input catalogue breaks."""

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID_LENGTH = 100
