package lineapi

// RawMessage is a message already encoded as JSON, sent as it is. It lets a caller that sends
// many messages of one shape encode them without the SDK's model types, whose MarshalJSON
// methods call json.Marshal again at every level of nesting, so that a flex message is
// re-validated and re-compacted once per level.
//
// It satisfies messaging_api.MessageInterface, and the SDK passes message types it does not know
// through to encoding/json unchanged. encoding/json still checks that JSON is valid before a
// request is sent, so a broken message fails the call instead of reaching LINE.
type RawMessage struct {
	// Type is the message's "type" property, e.g. "flex". It must match the one in JSON.
	Type string
	// JSON is one complete message object as LINE expects it, "type" included.
	JSON []byte
}

// GetType returns the message type, as messaging_api.MessageInterface requires.
func (m RawMessage) GetType() string { return m.Type }

// MarshalJSON returns m.JSON. The receiver is a value, unlike the SDK's messages, so a
// RawMessage works in a []MessageInterface both as a value and as a pointer.
func (m RawMessage) MarshalJSON() ([]byte, error) { return m.JSON, nil }
