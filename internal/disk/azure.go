package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
// the virtual size plus the 512-byte footer, footer checksum valid, the
// CHS geometry the VHD specification gives for that size, and Azure's size
// limits for a page blob and for an OS disk (see CheckAzureUploadSize and
// CheckAzureOSDiskSize).
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
	if ft.CurrentSize <= maxVirtualSize*2 {
		azureSizeFindings(f, ft, size, add)
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

// azureSizeFindings adds what Azure's size limits say of a VHD of virtual
// size bytes: imgpipe uploads a page blob (or a managed disk) that becomes
// the OS disk of an image, so both the upload's and the OS disk's limits
// apply. A fixed VHD's partition table tells its generation (a generation 1
// OS disk has a lower limit).
func azureSizeFindings(f io.ReaderAt, ft *Footer, size int64, add func(sev, check, msg, fix string)) {
	vhdSize := AlignMiB(size) + footerSize
	strip := func(err error) string { return strings.TrimPrefix(err.Error(), ErrTooLarge.Error()+": ") }
	if err := CheckAzureUploadSize(vhdSize, UploadPageBlob); err != nil {
		msg, fix, _ := strings.Cut(strip(err), ": ")
		add("error", "page-blob-size", msg, fix)
	}
	var gen Generation
	if ft.DiskType == vhdTypeFixed {
		gen, _ = DetectGeneration(readerImage{f, size})
	}
	if err := CheckAzureOSDiskSize(vhdSize, gen); err != nil {
		msg, fix, _ := strings.Cut(strip(err), ": ")
		add("error", "os-disk-size", msg, fix)
	}
}

// readerImage is the data part of a fixed VHD seen as an Image, for
// partition table reads.
type readerImage struct {
	r    io.ReaderAt
	size int64
}

func (r readerImage) ReadAt(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, r.size)
	if q == nil {
		return 0, eof
	}
	if err := readFull(r.r, q, off); err != nil {
		return 0, err
	}
	return len(q), eof
}
func (r readerImage) Size() int64                { return r.size }
func (r readerImage) Format() Format             { return FormatRaw }
func (r readerImage) Extents() ([]Extent, error) { return []Extent{{0, r.size}}, nil }
func (r readerImage) Close() error               { return nil }

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

// Azure's size limits for an uploaded VHD. Sizes are of the VHD as Azure
// receives it: the virtual size (a whole number of MiB) plus the 512-byte
// footer, which is also the page blob's length and a managed disk's
// uploadSizeBytes.
const (
	// A page blob holds at most 8 TiB (MicrosoftDocs/azure-docs,
	// includes/storage-blob-scale-targets.md: "Maximum size of a page blob:
	// 8 TiB"). With the footer inside the blob and the virtual size a whole
	// MiB, the largest virtual size is 8 TiB - 1 MiB.
	AzurePageBlobMaxBytes = 8 << 40
	// A managed disk created for upload takes uploadSizeBytes from 20 MiB +
	// 512 to 32 TiB + 512 (Compute API, DiskCreationData.UploadSizeBytes on
	// learn.microsoft.com:
	// "between 20972032 (20 MiB + 512 bytes for the VHD footer) and
	// 35183298347520 bytes (32 TiB + 512 bytes for the VHD footer)").
	AzureManagedDiskMinUploadBytes = 20<<20 + footerSize
	AzureManagedDiskMaxUploadBytes = 32<<40 + footerSize
	// An OS disk, and so a managed image or gallery image version made from
	// one, is at most 4,095 GiB (learn.microsoft.com, the Az PowerShell
	// OSDiskSizeGiB model: "Maximum is 4095 GiB for Managed disks";
	// hashicorp/terraform-provider-azurerm#9202 created VMs and scale sets
	// with 4095 GB OS disks), and at most 2 TiB on a generation 1
	// (BIOS, MBR) VM (MicrosoftDocs/azure-docs,
	// articles/virtual-machines/windows/prepare-for-upload-vhd-image.md: "The
	// maximum size allowed for the OS VHD on a generation 1 VM is 2 TB").
	AzureOSDiskMaxVirtualBytes     = 4095 << 30
	AzureOSDiskGen1MaxVirtualBytes = 2 << 40
)

// UploadTarget is what an Azure-ready VHD is uploaded into.
type UploadTarget string

// The upload targets imgpipe uses.
const (
	UploadPageBlob    UploadTarget = "page-blob"
	UploadManagedDisk UploadTarget = "managed-disk"
)

// ErrTooLarge (or too small) marks a disk outside one of Azure's size
// limits. Test with errors.Is.
var ErrTooLarge = errors.New("disk size outside Azure's limits")

// CheckAzureUploadSize reports whether a VHD of vhdSize bytes (the
// Azure-ready view's Size(): virtual size + 512-byte footer) fits target.
// Call it before creating the blob or the disk, so that nothing is
// uploaded that Azure will refuse. Errors wrap ErrTooLarge.
func CheckAzureUploadSize(vhdSize int64, target UploadTarget) error {
	virtual := vhdSize - footerSize
	switch target {
	case UploadPageBlob:
		if vhdSize > AzurePageBlobMaxBytes {
			return fmt.Errorf("%w: the Azure VHD is %s (virtual %s) and a page blob holds at most 8 TiB: shrink the disk (its partitions, then the virtual disk) below 8 TiB, or upload it straight to a managed disk (up to 32 TiB, but then not as an OS disk)", ErrTooLarge, sizeName(vhdSize), sizeName(virtual))
		}
	case UploadManagedDisk:
		if vhdSize > AzureManagedDiskMaxUploadBytes {
			return fmt.Errorf("%w: the Azure VHD is %s (virtual %s) and a managed disk upload takes at most 32 TiB + 512 bytes: shrink the disk below 32 TiB", ErrTooLarge, sizeName(vhdSize), sizeName(virtual))
		}
		if vhdSize < AzureManagedDiskMinUploadBytes {
			return fmt.Errorf("%w: the Azure VHD is %s (virtual %s) and a managed disk upload takes at least 20 MiB + 512 bytes: grow the virtual disk to 20 MiB or more", ErrTooLarge, sizeName(vhdSize), sizeName(virtual))
		}
	default:
		return fmt.Errorf("unknown upload target %q: use %s or %s", target, UploadPageBlob, UploadManagedDisk)
	}
	return nil
}

// CheckAzureOSDiskSize reports whether a VHD of vhdSize bytes (virtual size
// + footer) can be the OS disk of a managed image or gallery image version
// booting as gen (V1, V2, or "" when unknown, which applies the V2 limit).
// Call it before uploading a disk that will become an image. Errors wrap
// ErrTooLarge.
func CheckAzureOSDiskSize(vhdSize int64, gen Generation) error {
	virtual := vhdSize - footerSize
	if virtual > AzureOSDiskMaxVirtualBytes {
		return fmt.Errorf("%w: the disk's virtual size is %s and an Azure OS disk (and so a managed image or gallery image version) is at most 4,095 GiB: shrink the OS partition and the virtual disk, and keep data on data disks", ErrTooLarge, sizeName(virtual))
	}
	if gen == GenerationV1 && virtual > AzureOSDiskGen1MaxVirtualBytes {
		return fmt.Errorf("%w: the disk's virtual size is %s and a generation 1 (BIOS/MBR) OS disk in Azure is at most 2 TiB: shrink it below 2 TiB, or build a generation 2 (UEFI/GPT) image", ErrTooLarge, sizeName(virtual))
	}
	return nil
}

// sizeName prints a byte count with its binary unit.
func sizeName(n int64) string {
	switch {
	case n >= 1<<40 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB (%.2f TiB, %d bytes)", n>>30, float64(n)/(1<<40), n)
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB (%d bytes)", float64(n)/(1<<30), n)
	default:
		return fmt.Sprintf("%.2f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
}
