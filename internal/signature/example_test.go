package signature_test

import (
	"fmt"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

// The worked example of Pusher's HTTP API reference.
func ExampleSignRequest() {
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	q := signature.SignRequest("278d425bdf160c739803", "7ad3773142a6692b25b8", "POST", "/apps/3/events", nil, body, time.Unix(1353088179, 0))
	fmt.Println(q.Get("body_md5"))
	fmt.Println(q.Get("auth_signature"))
	// Output:
	// ec365a775a4cd0599faeb73354201b6f
	// da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c
}

// A pusher:subscribe to a private channel carries this auth value.
func ExampleChannelAuth() {
	fmt.Println(signature.ChannelAuth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", ""))
	// Output:
	// 278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4
}
