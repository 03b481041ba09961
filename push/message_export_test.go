package push

// SDKLINEMessage is the reference encoding of LINEMessage, for the tests of package push_test.
var SDKLINEMessage = sdkLINEMessage
