package servertest

// Close closes the client's connection, as a client does once it has
// read the server's close frame (the server then stops waiting for the
// close handshake).
func (c *Client) Close() error { return c.conn.Close() }
