package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"
)

// identifier is implemented by images that carry (or can derive) a stable
// disk identity, used for the footer of the Azure view so that the view's
// bytes are the same every time the same source is opened.
type identifier interface {
	identity() (id [16]byte, ts time.Time)
}

func (r *rawImage) identity() ([16]byte, time.Time) {
	return contentID(r), r.f.modTime()
}

// contentID derives a version-4-shaped UUID from the size and the first 64
// KiB of an image.
func contentID(img Image) [16]byte {
	h := sha256.New()
	var sz [8]byte
	binary.BigEndian.PutUint64(sz[:], uint64(img.Size()))
	h.Write([]byte("imgpipe disk id\x00"))
	h.Write(sz[:])
	buf := make([]byte, min(img.Size(), 64<<10))
	if n, _ := img.ReadAt(buf, 0); n > 0 {
		h.Write(buf[:n])
	}
	var id [16]byte
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// AlignMiB rounds size up to a whole number of MiB.
func AlignMiB(size int64) int64 { return (size + mib - 1) &^ (mib - 1) }

// azureView presents any image as an Azure-ready fixed VHD: the data, zeros
// up to a whole MiB, then a 512-byte fixed footer.
type azureView struct {
	src      Image
	dataSize int64
	footer   []byte
}

// AzureVHD returns a streaming, read-only view of src as an Azure-ready
// fixed VHD: virtual size rounded up to a whole MiB, the data (zero padded),
// then a valid 512-byte fixed VHD footer. Nothing is written anywhere. The
// footer's unique id and time stamp come from the source (the VHD's own, the
// VHDX virtual disk id, or a hash of the first 64 KiB), so the view's bytes
// are stable across opens. Closing the view closes src.
func AzureVHD(src Image) Image {
	var id [16]byte
	var ts time.Time
	if ider, ok := src.(identifier); ok {
		id, ts = ider.identity()
	}
	if id == ([16]byte{}) {
		id = contentID(src)
	}
	size := AlignMiB(src.Size())
	return &azureView{src: src, dataSize: size, footer: NewFixedFooter(size, id, ts).Marshal()}
}

func (a *azureView) Size() int64    { return a.dataSize + footerSize }
func (a *azureView) Format() Format { return FormatVHDFixed }
func (a *azureView) Close() error   { return a.src.Close() }

// Footer returns a copy of the 512-byte footer at the end of the view.
func (a *azureView) Footer() []byte { return append([]byte(nil), a.footer...) }

func (a *azureView) Info() Info {
	in := Info{Format: FormatVHDFixed, VirtualSize: a.dataSize, LogicalSectorSize: 512, PhysicalSectorSize: 512, FileSize: a.Size()}
	if d, ok := a.src.(Describer); ok {
		si := d.Info()
		in.LogicalSectorSize, in.PhysicalSectorSize = si.LogicalSectorSize, si.PhysicalSectorSize
	}
	f, _ := ParseFooter(a.footer)
	in.DiskID = formatUUID(f.UniqueID)
	return in
}

func (a *azureView) ReadAt(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, a.Size())
	if q == nil {
		return 0, eof
	}
	done := 0
	srcSize := a.src.Size()
	for done < len(q) {
		pos := off + int64(done)
		switch {
		case pos < srcSize:
			n := int(min(int64(len(q)-done), srcSize-pos))
			m, err := a.src.ReadAt(q[done:done+n], pos)
			if m < n {
				if err == nil {
					err = fmt.Errorf("short read from source at %d", pos)
				}
				return done + m, err
			}
			done += n
		case pos < a.dataSize:
			n := int(min(int64(len(q)-done), a.dataSize-pos))
			zero(q[done : done+n])
			done += n
		default:
			done += copy(q[done:], a.footer[pos-a.dataSize:])
		}
	}
	return len(q), eof
}

func (a *azureView) Extents() ([]Extent, error) {
	ext, err := a.src.Extents()
	if err != nil {
		return nil, err
	}
	out := append(normalize(ext, a.src.Size()), Extent{a.dataSize, footerSize})
	return out, nil
}

// Finding is one result of a readiness check.
type Finding struct {
	Severity string `json:"severity"` // "error" (Azure will refuse it) or "warning"
	Check    string `json:"check"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

// Readiness is the outcome of CheckAzureVHD.
type Readiness struct {
	Ready    bool      `json:"ready"`
	Findings []Finding `json:"findings"`
}

const fixConvert = "convert it: imgpipe disk convert IN OUT.vhd --to vhd-fixed (or upload with imgpipe, which streams an Azure-ready view)"

// CheckAzureVHD checks whether the file at path can be uploaded to Azure as
// it is: a fixed VHD, virtual size a whole number of MiB, file size equal to
// the virtual size plus the 512-byte footer, footer checksum valid, and the
// CHS geometry the VHD specification gives for that size.
func CheckAzureVHD(path string) (*Readiness, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return checkAzure(f, st.Size())
}

func checkAzure(f io.ReaderAt, fileSize int64) (*Readiness, error) {
	r := &Readiness{}
	add := func(sev, check, msg, fix string) {
		r.Findings = append(r.Findings, Finding{sev, check, msg, fix})
	}
	defer func() {
		r.Ready = true
		for _, x := range r.Findings {
			if x.Severity == "error" {
				r.Ready = false
			}
		}
	}()
	if fileSize < footerSize {
		add("error", "footer", fmt.Sprintf("the file is %d bytes, too small to hold a VHD footer", fileSize), fixConvert)
		return r, nil
	}
	if format, err := detect(f, fileSize); err == nil && format == FormatVHDX {
		add("error", "format", "this is a VHDX file; Azure accepts only fixed VHD", fixConvert)
		return r, nil
	}
	var b [footerSize]byte
	if err := readFull(f, b[:], fileSize-footerSize); err != nil {
		return nil, err
	}
	ft, err := ParseFooter(b[:])
	if err != nil {
		add("error", "footer", "no VHD footer at the end of the file (it is a raw image or a damaged VHD)", fixConvert)
		return r, nil
	}
	if !ft.ChecksumOK() {
		add("error", "checksum", fmt.Sprintf("footer checksum is %#08x but the footer sums to %#08x", ft.Checksum, ft.ComputedChecksum), fixConvert)
	}
	if ft.FormatVersion != 0x00010000 {
		add("error", "version", fmt.Sprintf("footer format version is %#08x, want 0x00010000", ft.FormatVersion), fixConvert)
	}
	if ft.DiskType != vhdTypeFixed {
		add("error", "type", fmt.Sprintf("disk type is %s; Azure accepts only fixed VHDs", ft.DiskTypeName()), fixConvert)
	}
	size := int64(ft.CurrentSize)
	if size%mib != 0 {
		add("error", "size", fmt.Sprintf("virtual size %d bytes is not a whole number of MiB (next MiB: %d)", size, AlignMiB(size)), fixConvert)
	}
	if ft.DiskType == vhdTypeFixed && fileSize != size+footerSize {
		add("error", "file-size", fmt.Sprintf("file is %d bytes; a fixed VHD of %d bytes must be exactly %d (data + 512-byte footer)", fileSize, size, size+footerSize), fixConvert)
	}
	if c, h, s := Geometry(size); c != ft.Cylinders || h != ft.Heads || s != ft.SectorsPerTrack {
		add("warning", "geometry", fmt.Sprintf("CHS geometry is %d/%d/%d, the VHD specification gives %d/%d/%d for this size", ft.Cylinders, ft.Heads, ft.SectorsPerTrack, c, h, s),
			"usually harmless for Azure (it uses the footer's size), but rewrite the footer to be safe: "+fixConvert)
	}
	if ft.DiskType == vhdTypeFixed && ft.DataOffset != 0xFFFFFFFFFFFFFFFF {
		add("warning", "data-offset", fmt.Sprintf("fixed VHD data offset is %#x, the specification says 0xFFFFFFFFFFFFFFFF", ft.DataOffset), fixConvert)
	}
	return r, nil
}

// Generation is the Hyper-V generation an image boots as.
type Generation string

// Hyper-V generations, spelled as Azure's hyperVGeneration property.
const (
	GenerationV1 Generation = "V1"
	GenerationV2 Generation = "V2"
)

var (
	espType      = parseGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	biosBootType = parseGUID("21686148-6449-6E6F-744E-656564454649")
)

// DetectGeneration reads the partition table of img: a protective MBR with a
// GPT that holds an EFI System Partition means UEFI boot (V2); an MBR with
// boot code or an active partition (or a GPT with only a BIOS boot
// partition) means BIOS boot (V1). Anything else is an error asking the
// user to say which.
func DetectGeneration(img Image) (Generation, error) {
	const ask = "cannot tell the Hyper-V generation from the partition table: set it explicitly (V1 for BIOS boot, V2 for UEFI)"
	var mbr [512]byte
	if img.Size() < 512 {
		return "", fmt.Errorf("%s: the disk is smaller than one sector", ask)
	}
	if err := readFull(img, mbr[:], 0); err != nil {
		return "", fmt.Errorf("read the master boot record: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return "", fmt.Errorf("%s: no MBR signature in sector 0", ask)
	}
	protective, active := false, false
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:]
		if e[4] == 0xEE {
			protective = true
		}
		if e[0] == 0x80 && e[4] != 0 {
			active = true
		}
	}
	if protective {
		for _, ss := range []int64{512, 4096} {
			gen, found, err := gptGeneration(img, ss)
			if err != nil {
				return "", err
			}
			if found {
				if gen == "" {
					return "", fmt.Errorf("%s: the GPT has neither an EFI System Partition nor a BIOS boot partition", ask)
				}
				return gen, nil
			}
		}
		return "", fmt.Errorf("%s: protective MBR but no valid GPT header", ask)
	}
	if active || !isZero(mbr[:440]) {
		return GenerationV1, nil
	}
	return "", fmt.Errorf("%s: the MBR has no boot code and no active partition", ask)
}

// gptGeneration reads the GPT with sector size ss. found reports whether a
// GPT header was there.
func gptGeneration(img Image, ss int64) (gen Generation, found bool, err error) {
	if img.Size() < 2*ss {
		return "", false, nil
	}
	hdr := make([]byte, 92)
	if err := readFull(img, hdr, ss); err != nil {
		return "", false, fmt.Errorf("read the GPT header: %w", err)
	}
	if string(hdr[:8]) != "EFI PART" {
		return "", false, nil
	}
	entriesLBA := int64(binary.LittleEndian.Uint64(hdr[72:]))
	count := int64(binary.LittleEndian.Uint32(hdr[80:]))
	esize := int64(binary.LittleEndian.Uint32(hdr[84:]))
	if esize < 128 || esize > 4096 || count > 4096 || entriesLBA <= 0 || entriesLBA > img.Size()/ss {
		return "", true, fmt.Errorf("GPT header is inconsistent (entries at LBA %d, %d entries of %d bytes)", entriesLBA, count, esize)
	}
	buf := make([]byte, count*esize)
	if err := readFull(img, buf, entriesLBA*ss); err != nil {
		return "", true, fmt.Errorf("read the GPT partition entries: %w", err)
	}
	bios := false
	for i := int64(0); i < count; i++ {
		var t guid
		copy(t[:], buf[i*esize:])
		switch t {
		case espType:
			return GenerationV2, true, nil
		case biosBootType:
			bios = true
		}
	}
	if bios {
		return GenerationV1, true, nil
	}
	return "", true, nil
}
