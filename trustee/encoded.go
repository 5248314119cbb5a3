package trustee

import (
	"fmt"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// EncodedContributions are Contributions that can also give each contribution as its
// protobuf encoding, which goes to a trustee as it is. A frontend's log holds its
// contributions encoded, 1.7 MB each at 100,000 parameters: decoding one and encoding it again
// for each of the trustees cost a frontend about a tenth of its CPU.
type EncodedContributions interface {
	Contributions
	// Encoded yields every contribution's encoding, in All's order; each call is a new pass.
	// Each slice is the caller's to keep: gRPC may still be sending it after the yield
	// returns, so it is never reused or changed.
	Encoded() iter.Seq2[[]byte, error]
}

// contributionField is SumPart's field number of its contribution.
const contributionField = 2

// encodedPart is a SumPart holding one contribution already encoded (EncodedContributions).
type encodedPart []byte

// partCodec is gRPC's protobuf codec, except that it sends an encodedPart without copying it:
// the SumPart's field header, then the contribution's bytes.
type partCodec struct{ encoding.CodecV2 }

func (c partCodec) Marshal(v any) (mem.BufferSlice, error) {
	raw, ok := v.(encodedPart)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	head := protowire.AppendVarint(protowire.AppendTag(nil, contributionField, protowire.BytesType), uint64(len(raw)))
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(raw)}, nil
}

// sumStreamCodec is the codec of a CommitSum or CommitPart stream.
func sumStreamCodec() partCodec { return partCodec{encoding.GetCodecV2(grpcproto.Name)} }

// sumStreamOptions are the options of a CommitSum or CommitPart stream.
func sumStreamOptions() []grpc.CallOption {
	return []grpc.CallOption{grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes),
		grpc.ForceCodecV2(sumStreamCodec())}
}

// sendContributions sends hdr and then contribs on a CommitSum or CommitPart stream opened with
// sumStreamOptions. It returns errEnded if the trustee ended the stream, or an error reading
// contribs.
func sendContributions(stream grpc.ClientStream, hdr *vigilv1.SumHeader, contribs Contributions) error {
	if err := stream.SendMsg(&vigilv1.SumPart{Part: &vigilv1.SumPart_Header{Header: hdr}}); err != nil {
		return errEnded
	}
	send := func(m any, err error) error {
		if err != nil {
			return fmt.Errorf("reading the round's contributions: %w", err)
		}
		if err := stream.SendMsg(m); err != nil {
			return errEnded
		}
		return nil
	}
	if enc, ok := contribs.(EncodedContributions); ok {
		for raw, err := range enc.Encoded() {
			if err := send(encodedPart(raw), err); err != nil {
				return err
			}
		}
		return nil
	}
	for ct, err := range contribs.All() {
		if err := send(&vigilv1.SumPart{Part: &vigilv1.SumPart_Contribution{Contribution: ct}}, err); err != nil {
			return err
		}
	}
	return nil
}
