// Package e2e holds Vigil's end-to-end tests: a real coordinator, devices over gRPC on
// loopback, the release outbox and device updaters against real MinIO servers. It has no
// code of its own; see the _test.go files. The tests skip unless .ci/minio.sh has exported
// VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY and VIGIL_MINIO_BIN.
package e2e
