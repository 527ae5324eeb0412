"""The local runtime: the embedded AWS emulator, the deployed stack and what runs in place of what the
emulator lacks (the event source mapping, Firehose, a DynamoDB stream mapping, PostgreSQL). Development
tools: never in a Lambda package."""
