package disk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Format detection looks only at content, never at the file name. imgpipe
// reads qcow2, VHDX and VHD; it recognises the other formats qemu-img knows
// (and compressed archives, text, and files too small to be a disk) so that
// they are refused with the command that converts them, instead of being
// read as a raw disk. What is left is raw; a raw disk without an MBR or GPT
// is accepted with a warning (Info.Warnings).

// FormatError refuses a file that is not a disk image imgpipe reads. It
// says what the file is and what to do, with the exact command when there
// is one. errors.Is(err, ErrUnsupported) (or ErrCorrupt for damaged images).
type FormatError struct {
	Format string // what the content looks like: "vmdk", "vdi", "text", "empty", ...
	Reason string // what the file is, in words
	Fix    string // what to do, when there is no conversion command
	Kind   error  // ErrUnsupported or ErrCorrupt
	Path   string // the file, when known (Open sets it): used in the command

	convertFrom string // qemu-img's -f name, for the conversion command
}

func (e *FormatError) Error() string {
	fix := e.Fix
	if e.convertFrom != "" {
		fix = "convert it first: " + e.Command()
	}
	in := "IN"
	if e.Path != "" {
		in = shellQuote(e.Path)
	}
	return fmt.Sprintf("%s: %s: %s", e.Kind, e.Reason, strings.ReplaceAll(fix, "IN", in))
}

func (e *FormatError) Unwrap() error { return e.Kind }

// Command is the qemu-img command that converts the file to a dynamic VHDX,
// which imgpipe reads sparsely (use "-O vpc -o subformat=fixed,force_size=on"
// for an Azure-ready VHD, or "-O raw"). Empty when there is none.
func (e *FormatError) Command() string {
	if e.convertFrom == "" {
		return ""
	}
	in, out := "IN", "OUT.vhdx"
	if e.Path != "" {
		in = shellQuote(e.Path)
		out = shellQuote(strings.TrimSuffix(e.Path, filepath.Ext(e.Path)) + ".vhdx")
	}
	return fmt.Sprintf("qemu-img convert -f %s -O vhdx -o subformat=dynamic %s %s", e.convertFrom, in, out)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+:@%=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func unsupported(format, reason, from string) *FormatError {
	return &FormatError{Format: format, Reason: reason, Kind: ErrUnsupported, convertFrom: from}
}

const (
	// FormatQcow2 is QEMU's copy-on-write format (read only).
	FormatQcow2 Format = "qcow2"

	minDiskSize = 512 // one sector
	sniffSize   = 64 << 10
)

// The formats recognised to be refused (detect returns them; open refuses).
const (
	formatVMDK      Format = "vmdk"
	formatVDI       Format = "vdi"
	formatQED       Format = "qed"
	formatQcow1     Format = "qcow"
	formatParallels Format = "parallels"
	formatBochs     Format = "bochs"
	formatCloop     Format = "cloop"
	formatDMG       Format = "dmg"
	formatLUKS      Format = "luks"
	formatISO       Format = "iso"
	formatArchive   Format = "archive"
)

// refusal is the error for a format detect recognised but imgpipe does not read.
func refusal(format Format, head []byte) error {
	switch format {
	case formatVMDK:
		what := "a VMDK image (VMware)"
		if !bytes.HasPrefix(head, []byte("KDMV")) && !bytes.HasPrefix(head, []byte("COWD")) {
			what = "a VMDK descriptor (VMware; the data is in the extent files it names, next to it)"
		}
		return unsupported("vmdk", what, "vmdk")
	case formatVDI:
		return unsupported("vdi", "a VDI image (VirtualBox)", "vdi")
	case formatQED:
		return unsupported("qed", "a QED image (QEMU enhanced disk)", "qed")
	case formatQcow1:
		return unsupported("qcow", "a qcow version 1 image (the format before qcow2)", "qcow")
	case formatParallels:
		return unsupported("parallels", "a Parallels image", "parallels")
	case formatBochs:
		return unsupported("bochs", "a Bochs image", "bochs")
	case formatCloop:
		return unsupported("cloop", "a cloop compressed loopback image", "cloop")
	case formatDMG:
		return unsupported("dmg", "an Apple disk image (DMG)", "dmg")
	case formatLUKS:
		return &FormatError{Format: "luks", Kind: ErrUnsupported, Reason: "a LUKS-encrypted image",
			Fix: "decrypt it first: qemu-img convert --object secret,id=sec0,file=PASSPHRASE_FILE --image-opts driver=luks,file.filename=IN,key-secret=sec0 -O vhdx -o subformat=dynamic OUT.vhdx"}
	case formatISO:
		return &FormatError{Format: "iso", Kind: ErrUnsupported, Reason: "an ISO 9660 image (CD/DVD installation media), not a disk",
			Fix: "install from it into a disk (Packer's iso_url) and publish that disk; if you really mean to publish the ISO's bytes as a disk: qemu-img convert -f raw -O vhdx -o subformat=dynamic IN OUT.vhdx"}
	case formatArchive:
		return archiveRefusal(head)
	}
	return fmt.Errorf("%w: disk format %q", ErrUnsupported, format)
}

var archiveMagics = []struct {
	magic, what, fix string
}{
	{"\x1f\x8b", "gzip-compressed", "gzip -dk IN"},
	{"\xfd7zXZ\x00", "xz-compressed", "xz -dk IN"},
	{"\x28\xb5\x2f\xfd", "zstd-compressed", "zstd -d IN"},
	{"BZh", "bzip2-compressed", "bzip2 -dk IN"},
	{"PK\x03\x04", "a zip archive", "unzip IN"},
	{"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "7z x IN"},
}

func archiveRefusal(head []byte) error {
	for _, a := range archiveMagics {
		if bytes.HasPrefix(head, []byte(a.magic)) {
			return &FormatError{Format: "archive", Kind: ErrUnsupported, Reason: "a " + a.what + " file, not a disk image",
				Fix: "unpack it first (" + a.fix + ") and give imgpipe the disk image inside"}
		}
	}
	return &FormatError{Format: "archive", Kind: ErrUnsupported, Reason: "a tar archive (an OVA is one), not a disk image",
		Fix: "unpack it first (tar -xf IN) and give imgpipe the disk image inside (an OVA's VMDK then needs: qemu-img convert -f vmdk -O vhdx -o subformat=dynamic DISK.vmdk DISK.vhdx)"}
}

// sniff decides the format from the content. Known foreign formats come back
// as their Format (open refuses them); files that are no disk at all (empty,
// too small, text, a damaged VHDX or VHD) come back as a *FormatError.
func sniff(r io.ReaderAt, size int64) (Format, []byte, error) {
	if size == 0 {
		return "", nil, &FormatError{Format: "empty", Kind: ErrCorrupt, Reason: "the file is empty (0 bytes), not a disk image",
			Fix: "the build may not have finished writing it: rebuild the image"}
	}
	head := make([]byte, min(size, sniffSize))
	if err := readFull(r, head, 0); err != nil {
		return "", nil, fmt.Errorf("read the start of the file: %w", err)
	}
	at := func(off int, s string) bool {
		return off+len(s) <= len(head) && string(head[off:off+len(s)]) == s
	}
	// The formats imgpipe reads say themselves what is wrong with a short file.
	switch {
	case at(0, vhdxSignature):
		return FormatVHDX, head, nil
	case at(0, qcow2Magic) && (len(head) < 8 || beU32(head[4:]) != 1):
		return FormatQcow2, head, nil
	}
	switch {
	case at(0, qcow2Magic):
		return formatQcow1, head, nil
	case at(0, "QED\x00"):
		return formatQED, head, nil
	case at(0, "KDMV"), at(0, "COWD"), isVMDKDescriptor(head):
		return formatVMDK, head, nil
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f:
		return formatVDI, head, nil
	case at(0, "WithoutFreeSpace"), at(0, "WithouFreSpacExt"):
		return formatParallels, head, nil
	case at(0, "Bochs Virtual HD Image"):
		return formatBochs, head, nil
	case at(0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop"):
		return formatCloop, head, nil
	case at(0, "LUKS\xba\xbe"):
		return formatLUKS, head, nil
	}
	if size < minDiskSize {
		if isText(head) {
			return "", nil, textRefusal()
		}
		return "", nil, &FormatError{Format: "too-small", Kind: ErrCorrupt,
			Reason: fmt.Sprintf("the file is %d bytes, smaller than one 512-byte sector: not a disk image", size),
			Fix:    "the build may not have finished writing it: rebuild the image"}
	}
	// VHD: the footer at the end (the existing detection decides the type).
	if f, err := detectVHD(r, size, head); f != "" || err != nil {
		return f, head, err
	}
	var tail [512]byte
	if err := readFull(r, tail[:], size-512); err != nil {
		return "", nil, fmt.Errorf("read the end of the file: %w", err)
	}
	if string(tail[:4]) == "koly" {
		return formatDMG, head, nil
	}
	var cd [5]byte
	if size >= 0x8001+5 {
		if err := readFull(r, cd[:], 0x8001); err != nil {
			return "", nil, err
		}
		if string(cd[:]) == "CD001" {
			return formatISO, head, nil
		}
	}
	for _, a := range archiveMagics {
		if at(0, a.magic) {
			return formatArchive, head, nil
		}
	}
	if at(257, "ustar") {
		return formatArchive, head, nil
	}
	if err := damagedSignature(r, size, head, tail[:]); err != nil {
		return "", nil, err
	}
	if isText(head[:min(len(head), 4096)]) {
		return "", nil, textRefusal()
	}
	return FormatRaw, head, nil
}

func textRefusal() error {
	return &FormatError{Format: "text", Kind: ErrUnsupported, Reason: "a text file, not a disk image",
		Fix: "give the path of the disk image (a .vhdx, .vhd, .qcow2 or raw file), not of a description or log"}
}

// detectVHD recognises a VHD by its footer (or the copy of it at 0).
func detectVHD(r io.ReaderAt, size int64, head []byte) (Format, error) {
	var ft [footerSize]byte
	if err := readFull(r, ft[:], size-footerSize); err != nil {
		return "", fmt.Errorf("read VHD footer: %w", err)
	}
	if string(ft[:8]) == vhdCookie {
		switch beU32(ft[60:]) {
		case vhdTypeFixed:
			return FormatVHDFixed, nil
		case vhdTypeDynamic:
			return FormatVHDDynamic, nil
		default:
			return "vhd-differencing", nil
		}
	}
	// A dynamic VHD whose trailing footer was lost still has its copy at 0.
	if string(head[:8]) == vhdCookie {
		return FormatVHDDynamic, nil
	}
	return "", nil
}

func isVMDKDescriptor(head []byte) bool {
	h := bytes.TrimLeft(head[:min(len(head), 1024)], "\xef\xbb\xbf \t\r\n")
	return bytes.HasPrefix(h, []byte("# Disk DescriptorFile"))
}

// damagedSignature finds VHDX and VHD files whose signature was lost: the
// structures behind it are still there (each with its own valid checksum),
// so the file must not be taken for a raw disk.
func damagedSignature(r io.ReaderAt, size int64, head, tail []byte) error {
	damaged := func(what, fix string) error {
		return &FormatError{Format: what, Kind: ErrCorrupt, Reason: "the file's " + what + " signature is missing but its " + what + " structures are there: a damaged " + what + ", not a raw disk", Fix: fix}
	}
	const vhdxFix = "restore it from its source or rebuild it (Hyper-V and qemu-img will refuse it too); do not upload it as raw"
	for _, off := range []int64{64 << 10, 128 << 10} {
		b := make([]byte, vhdxHeaderSize)
		if off+vhdxHeaderSize <= size && readFull(r, b, off) == nil {
			if _, err := parseVHDXHeader(b); err == nil {
				return damaged("VHDX", vhdxFix)
			}
		}
	}
	for _, off := range []int64{192 << 10, 256 << 10} {
		b := make([]byte, vhdxRegionSize)
		if off+vhdxRegionSize <= size && readFull(r, b, off) == nil {
			if _, err := parseRegionTable(b); err == nil {
				return damaged("VHDX", vhdxFix)
			}
		}
	}
	const vhdFix = "restore it from its source or rebuild it; do not upload it as raw"
	if len(head) >= 512+8 && string(head[512:520]) == vhdDynCookie {
		return damaged("VHD", vhdFix)
	}
	// A fixed VHD's footer with its cookie wiped: format version 1.0, a
	// known disk type and a current size that matches the file.
	if beU32(tail[12:]) == 0x00010000 && beU32(tail[60:]) == vhdTypeFixed && int64(beU64(tail[48:])) == size-512 {
		return damaged("VHD", vhdFix)
	}
	return nil
}

// isText reports whether b looks like text: lines (at least one newline)
// of valid UTF-8 (a cut rune at the end allowed), no NUL and almost no other
// control characters. A run of one printable byte without lines is left to
// the raw warning.
func isText(b []byte) bool {
	if len(b) == 0 || bytes.IndexByte(b, '\n') < 0 {
		return false
	}
	ctl := 0
	for len(b) > 0 {
		c, n := utf8.DecodeRune(b)
		if c == utf8.RuneError && n <= 1 {
			if len(b) < utf8.UTFMax && !utf8.FullRune(b) {
				break
			}
			return false
		}
		if c == 0 {
			return false
		}
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' {
			ctl++
		}
		b = b[n:]
	}
	return ctl <= 2
}

// rawWarnings are the doubts about a file read as raw: no partition table,
// or a size that is not whole sectors.
func rawWarnings(r io.ReaderAt, size int64, head []byte) []string {
	var w []string
	mbr := len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa
	gpt := len(head) >= 520 && string(head[512:520]) == "EFI PART" ||
		len(head) >= 4096+8 && string(head[4096:4104]) == "EFI PART"
	if !mbr && !gpt {
		w = append(w, "no MBR or GPT partition table found: if this is not a raw disk image (a bare file system, or a format imgpipe does not know), check it with qemu-img info before publishing it")
	}
	if size%512 != 0 {
		w = append(w, fmt.Sprintf("the size (%d bytes) is not a whole number of 512-byte sectors: the last sector is padded with zeros", size))
	}
	return w
}
