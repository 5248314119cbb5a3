package vigilv1

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the reasons Vigil's services give for
// refusing a call. The reasons are part of the API: clients branch on them.
const ErrorDomain = "vigil"

// Error returns a status error with code and msg that carries reason as a google.rpc.ErrorInfo
// and, if retryAfter is positive, a google.rpc.RetryInfo.
func Error(code codes.Code, reason, msg string, retryAfter time.Duration) error {
	st := status.New(code, msg)
	info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}
	var with *status.Status
	var err error
	if retryAfter > 0 {
		with, err = st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	} else {
		with, err = st.WithDetails(info)
	}
	if err != nil {
		return st.Err() // only for code OK, which a refusal never has
	}
	return with.Err()
}

// Reason returns the ErrorInfo reason of a status error from a Vigil service, or "".
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}
